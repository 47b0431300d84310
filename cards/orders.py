"""Order-time checks (order-select, order-sign; issue 18): a drug being ordered that already failed, is
unsafe for this patient, lacks its screening, duplicates a current class, or is not favoured in myositis.

The same assessment as patient-view (cards/rules.py) judges each draft MedicationRequest against the
record; silence when the order is fine. One card per draft order that needs one: its indicator follows the
most serious finding (a contraindication is ``warning`` at order-select and ``critical`` at order-sign, when
the order is about to be signed), its suggestions remove the draft (a ``delete`` action naming it), replace it
with the top option not yet tried, or draft the missing lab test (a ServiceRequest with a verified LOINC code).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from mappings.model import DraftOrder, PatientFacts

from .knowledge_base import Agent, Knowledge
from .models import Action, Card, Suggestion
from .phenotype import latest
from .render import CardDraft, draft_order, make_card
from .rules import Assessment, RankedOption, assess
from .text import Citations, agent_name, lower_first, md, new_uuid, render_template
from .trials import FAILED, INTOLERANT, ClassState

__all__ = ["order_cards", "offers_order_reasons", "Finding", "STAGES", "KIND_PREFIX"]

STAGES = ("select", "sign")
KIND_PREFIX = "order-"  # every order card's kind starts so (feedback checks its reasons against the order list)


def offers_order_reasons(kind: str) -> bool:
    """Whether a card of this kind offered the order-time override reasons (meta.order_override_reasons)."""
    return kind.startswith(KIND_PREFIX)


LOINC_SYSTEM = "http://loinc.org"

# Order of seriousness: the card's kind and indicator follow the first finding present.
_SEVERITY = ("contraindicated", "failed", "duplicate", "not_favoured", "intolerance", "screening")
# Findings that make removing the draft the first suggestion.
_REMOVE = frozenset({"contraindicated", "failed", "duplicate", "not_favoured"})


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # one of _SEVERITY
    text: str  # one plain sentence (record values escaped)
    references: tuple[str, ...] = ()
    lab_orders: tuple[tuple[str, str], ...] = ()  # (LOINC, display) to draft when a screen is missing
    critical_at_signing: bool = False  # harm from the first dose (knowledge: avoid_when at_signing)


def _weeks(s: ClassState) -> str:
    return f"{s.weeks} wk" if s.weeks is not None else "duration unknown"


def _span(s: ClassState) -> str:
    start = s.trial.first_date.isoformat() if s.trial.first_date else "start unknown"
    end = "now" if s.trial.ongoing else (s.trial.last_date.isoformat() if s.trial.last_date else "end unknown")
    return f"{start} to {end}, {_weeks(s)}"


def _agents(s: ClassState, knowledge: Knowledge, label: str) -> str:
    return ", ".join(md(agent_name(x, knowledge)) for x in s.trial.agents) or label


def _contraindications(cls: str, a: Assessment, knowledge: Knowledge) -> list[Finding]:
    """Every "remove" rule of an option of this class whose condition is recorded, and hepatitis B with
    rituximab (a boxed warning, flagged "warn" on the patient-view card)."""
    out: list[Finding] = []
    seen: set[str] = set()
    for option in knowledge.options:
        if option.therapy_class != cls:
            continue
        for avoid in option.avoid_when:
            serious = avoid.effect == "remove" or avoid.condition == "hepatitis_b"
            if serious and avoid.condition in a.conditions and avoid.condition not in seen:
                seen.add(avoid.condition)
                evidence = md(a.conditions[avoid.condition])
                out.append(
                    Finding(
                        "contraindicated",
                        f"{evidence} in the record: {avoid.text}.",
                        avoid.references,
                        critical_at_signing=avoid.at_signing == "critical",
                    )
                )
    return out


def _statin_in_imnm(a: Assessment, knowledge: Knowledge) -> list[Finding]:
    """A statin for necrotising myopathy: the patient-view pathway card says to stop any statin."""
    if "imnm" not in a.phenotypes:
        return []
    pathway = next((p for p in knowledge.pathways if p.situation == "imnm"), None)
    if pathway is None:
        return []
    what = md(a.phenotypes.get("anti_hmgcr") or a.phenotypes["imnm"])
    return [Finding("contraindicated", f"{what} in the record: {pathway.text}", pathway.references)]


def _screening(
    cls: str, state: ClassState | None, a: Assessment, facts: PatientFacts, knowledge: Knowledge, today: date
) -> list[Finding]:
    out: list[Finding] = []
    for caution in knowledge.cautions.values():
        # Only screens with a lab test to draft (hepatitis B, TB, TPMT, pregnancy): routine baseline bloods
        # are not worth interrupting an order for.
        if caution.kind != "screening" or cls not in caution.applies_to or not caution.lab_orders:
            continue
        if caution.first_course_only and state is not None and state.adequate:
            continue
        if "pregnancy" in caution.conditions:
            if not a.pregnancy_possible or "pregnancy" in a.conditions:
                continue  # a man or past child-bearing age: noise; pregnant: the contraindication speaks
            test = latest(facts, "pregnancy_test")
            limit = knowledge.threshold("pregnancy-test-negative-days")
            if test is not None and test.date is not None and (today - test.date).days <= limit:
                continue
        elif any(latest(facts, group) is not None for group in caution.labs):
            continue
        out.append(
            Finding(
                "screening",
                f"{caution.title}: no result in the record. {caution.text}",
                caution.references,
                tuple((o.loinc, o.display) for o in caution.lab_orders),
            )
        )
    return out


def _findings(
    order: DraftOrder,
    others: tuple[DraftOrder, ...],
    a: Assessment,
    facts: PatientFacts,
    knowledge: Knowledge,
    today: date,
) -> list[Finding]:
    """What is wrong with ``order`` here; ``others``: the rest of the order set (a duplicate among them)."""
    out: list[Finding] = []
    by_class = {s.therapy_class: s for s in a.states}
    ordered = {d.ingredient.lower() for d in order.drugs}
    for cls in sorted({d.therapy_class for d in order.drugs}):
        if cls == "statin":
            out += _statin_in_imnm(a, knowledge)
            continue
        out += _contraindications(cls, a, knowledge)
        info = knowledge.classes.get(cls)
        if info is None or not info.counts_as_second_agent:
            # Glucocorticoids, antimalarials and supportive drugs are not judged as trials here: a steroid
            # order is the backbone (or an IV pulse) of treatment, never "failed" or a duplicate to remove.
            continue
        label = lower_first(info.label)
        state = by_class.get(cls)
        # A renewal: a drug taken now ordered again. Not a duplicate, no "first dose" screening (renewals
        # are most orders; a card on each would be noise); the contraindications above still apply.
        renewal = state is not None and state.trial.ongoing and bool({x.lower() for x in state.trial.agents} & ordered)
        if renewal:
            continue
        if state is not None and state.outcome == FAILED:
            out.append(
                Finding(
                    "failed", f"{_agents(state, knowledge, label)} failed after an adequate trial ({_span(state)})."
                )
            )
        elif state is not None and state.outcome == INTOLERANT:
            out.append(
                Finding(
                    "intolerance",
                    f"{_agents(state, knowledge, label)} was stopped for intolerance ({_span(state)}): re-challenge "
                    "deliberately (another route or dose).",
                )
            )
        elif state is not None and state.trial.ongoing:
            out.append(
                Finding("duplicate", f"{_agents(state, knowledge, label)} is taken now ({_span(state)}): same class.")
            )
        twin = next((o for o in others if cls in {d.therapy_class for d in o.drugs}), None)
        if twin is not None:
            out.append(Finding("duplicate", f"{md(twin.label)} is in the same order set: same class."))
        for nf in knowledge.not_favoured:
            if nf.therapy_class == cls:
                out.append(
                    Finding("not_favoured", f"{nf.label} is not favoured in myositis: {nf.text}.", nf.references)
                )
        out += _screening(cls, state, a, facts, knowledge, today)
    return out


def _plain(label: str, limit: int = 60) -> str:
    text = " ".join(label.split())
    return text if len(text) <= limit else text[: limit - 3].rsplit(" ", 1)[0] + "..."


def _lab_request(loinc: str, display: str, facts: PatientFacts) -> Action:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{facts.patient_id}"},
        "code": {"coding": [{"system": LOINC_SYSTEM, "code": loinc, "display": display}], "text": display},
    }
    return Action(type="create", resource=resource, description=f"Draft lab order: {display}")


def _replacement(order: DraftOrder, a: Assessment, knowledge: Knowledge) -> RankedOption | None:
    """The top untried option to order instead; None for a steroid, an antimalarial or a statin (only a
    steroid-sparing or escalation agent is replaced)."""
    classes = {d.therapy_class for d in order.drugs}
    if not all((c := knowledge.classes.get(cls)) is not None and c.counts_as_second_agent for cls in classes):
        return None
    return next(
        (r for r in a.options if r.orderable and r.option.therapy_class not in classes and not r.option.combination_of),
        None,
    )


def _suggestions(
    order: DraftOrder, findings: list[Finding], replacement: RankedOption | None, facts: PatientFacts
) -> tuple[tuple[Suggestion, ...], str]:
    kinds = {f.kind for f in findings}
    if kinds & _REMOVE:
        remove = Action(
            type="delete", resource_id=(order.reference,), description=f"Remove the draft order {order.reference}"
        )
        out = [Suggestion(label="Remove this order", uuid=new_uuid(), actions=(remove,))]
        if replacement is not None:
            agent: Agent = replacement.option.agents[0]
            out.append(
                Suggestion(
                    label=f"Replace with {lower_first(replacement.option.label)} (draft order)",
                    uuid=new_uuid(),
                    # The new draft first: an EHR that applies one action of a suggestion (the HL7 sandbox's
                    # Rx View does) then puts it in place of the order, rather than only clearing it.
                    actions=(draft_order(agent, facts), remove),
                )
            )
        return tuple(out), "at-most-one"
    labs = [lab for f in findings for lab in f.lab_orders]
    out = [
        Suggestion(
            label=f"Order {display.split(' [', 1)[0]} (draft lab order)",
            uuid=new_uuid(),
            actions=(_lab_request(loinc, display, facts),),
        )
        for loinc, display in dict.fromkeys(labs)
    ]
    return tuple(out), "any"


def _order_card(
    order: DraftOrder,
    others: tuple[DraftOrder, ...],
    a: Assessment,
    facts: PatientFacts,
    knowledge: Knowledge,
    stage: str,
    preview_url: str | None,
    today: date,
) -> Card | None:
    classes = {d.therapy_class for d in order.drugs}
    findings = sorted(_findings(order, others, a, facts, knowledge, today), key=lambda f: _SEVERITY.index(f.kind))
    if not findings:
        return None
    cites = Citations(knowledge)
    top = findings[0].kind
    # critical only when signing an order that harms from the first dose; a warning for the other reasons to
    # remove a draft; info for what can be sorted out alongside (a screen, a deliberate re-challenge).
    if stage == "sign" and any(f.critical_at_signing for f in findings):
        indicator = "critical"
    elif top in _REMOVE:
        indicator = "warning"
    else:
        indicator = "info"
    missing = [f.text.split(":", 1)[0] for f in findings if f.kind == "screening"]
    replacement = _replacement(order, a, knowledge)
    summary, detail = render_template(
        "order-check",
        finding=top,
        stage=stage,
        critical=indicator == "critical",
        # The summary is plain text (CDS Hooks): the order's own words, shortened, never Markdown-escaped.
        order=_plain(order.label),
        missing=missing,
        findings=[f"{f.text} {cites.cite(f.references)}".strip() for f in findings],
        replacement=replacement is not None,
    )
    suggestions, behaviour = _suggestions(order, findings, replacement, facts)
    draft = CardDraft(
        # Per finding and class: the suppression store keeps one state per patient and kind, so two drafts in
        # one call need two kinds (a bounded set: findings x therapy classes, no patient data).
        kind=f"{KIND_PREFIX}{top.replace('_', '-')}:{'+'.join(sorted(classes))}",
        summary=summary,
        detail=detail,
        indicator=indicator,
        cites=cites,
        suggestions=suggestions,
        selection=behaviour,
        fingerprint_of=order.reference,
        order_reasons=True,
    )
    return make_card(knowledge, draft, preview_url, a)


def order_cards(
    facts: PatientFacts,
    orders: tuple[DraftOrder, ...],
    *,
    knowledge: Knowledge,
    today: date,
    stage: str,
    preview_url: str | None = None,
) -> list[Card]:
    """Cards for the draft orders that need one (order-select: the selected ones only); [] when all are fine
    or the patient has no myositis."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    a = assess(facts, knowledge, today)
    if a.route in ("none", "ibm", "juvenile"):
        return []
    out: dict[str, Card] = {}
    for o in orders:
        others = tuple(x for x in orders if x is not o and x.drugs)
        card = (
            _order_card(o, others, a, facts, knowledge, stage, preview_url, today) if o.selected and o.drugs else None
        )
        if card is not None:
            # Two drafts of one class with the same finding (tacrolimus and ciclosporin, both failed): the
            # second keeps its own card, under a numbered kind (at most one per draft order of the call).
            kind, n = card.kind, 1
            while kind in out:
                n += 1
                kind = f"{card.kind}:{n}"
            out[kind] = replace(card, kind=kind) if kind != card.kind else card
    return list(out.values())
