"""Assessment -> CDS Hooks cards.

One module: the main, urgent, safety and pathway cards are drawn from one Assessment with the same
citation helper, source label and draft orders; split per card they would re-derive those views.

Python decides which cards fire (cards/rules.py) and gathers what each says into plain values;
the wording is in cards/templates/ (one Markdown/Jinja template per card kind, each with a
``summary`` and a ``detail`` block) and in the knowledge YAML. References are numbered in order of
first citation and go in the card's ``links`` (never as inline links: in the HL7 sandbox those
navigate the EHR tab away from the chart). The short cards' words come from cards/text.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from mappings.model import PatientFacts

from .fingerprint import fingerprint
from .knowledge_base import Agent, Knowledge
from .models import Action, Card, Coding, Link, Source, Suggestion
from .phenotype import latest
from .rules import (
    FIRST_LINE,
    IBM,
    IN_PROGRESS_ONLY,
    JUDGE_RESPONSE,
    JUVENILE,
    LABS_UNAVAILABLE,
    NEXT_LINE,
    NO_MEDICATION_DATA,
    NONE,
    OPTIMISE,
    Assessment,
    RankedOption,
)
from .safety import SafetyItem
from .text import (
    EVIDENCE_WORDS,
    Citations,
    activity_lines,
    agent_name,
    lower_first,
    md,
    measure_line,
    names_list,
    new_uuid,
    render_template,
    tried_line,
    value_text,
    when_text,
)
from .trials import INTOLERANT
from .vocab import RXNORM_SYSTEM

__all__ = ["render_cards", "make_card", "CardDraft", "draft_order"]


# --- shared pieces ------------------------------------------------------------------------


def _source(knowledge: Knowledge) -> Source:
    system, code, display = knowledge.meta.topic
    label = f"{knowledge.meta.source_label}, version {knowledge.meta.version}"
    return Source(label=label, url=knowledge.source_url, topic=Coding(system, code, display))


def _override_reasons(knowledge: Knowledge, order: bool = False) -> tuple[Coding, ...]:
    system = knowledge.meta.override_reason_system
    reasons = knowledge.meta.order_override_reasons if order else knowledge.meta.override_reasons
    return tuple(Coding(system, code, display) for code, display in reasons)


@dataclass
class CardDraft:
    """What a card says before it becomes a Card (uuid, source, override reasons, links added by make_card)."""

    kind: str
    summary: str
    detail: str
    indicator: str
    cites: Citations
    suggestions: tuple[Suggestion, ...] = ()
    overrides: bool = True
    depends_on: str = ""
    selection: str = "at-most-one"  # "any" when the suggestions are independent (e.g. several lab orders)
    fingerprint_of: str = ""  # what else, beside the assessment, makes this card the same card (a draft order)
    order_reasons: bool = False  # an order card: it offers the order-time override reasons


def make_card(knowledge: Knowledge, d: CardDraft, preview_url: str | None, a: Assessment) -> Card:
    preview = (
        (Link(label="Full option list, timeline and references (myositis-cds)", url=preview_url),)
        if preview_url
        else ()
    )
    return Card(
        kind=d.kind,
        uuid=new_uuid(),
        summary=d.summary,
        indicator=d.indicator,
        source=_source(knowledge),
        detail=d.detail or None,
        suggestions=d.suggestions,
        selection_behavior=d.selection if d.suggestions else None,
        override_reasons=_override_reasons(knowledge, d.order_reasons) if d.overrides else (),
        links=preview + d.cites.links(knowledge.meta.max_reference_links),
        fingerprint=fingerprint(a, d.kind, d.fingerprint_of),
        depends_on=d.depends_on,
    )


def _notes(facts: PatientFacts, a: Assessment) -> list[str]:
    out = []
    if facts.gaps:
        # Gap reasons are the service's own words (never record text), e.g. "the FHIR server timed out".
        gaps = "; ".join(f"{md(g.resource_type)} ({md(g.reason)})" for g in facts.gaps)
        out.append(
            f"Not available from the EHR: {gaps}"
            + (" - 'not tried' means not in the available record" if a.medication_incomplete else "")
            + "."
        )
    if facts.unrecognised_medications:
        out.append(f"{len(facts.unrecognised_medications)} medication record(s) not recognised - check by hand.")
    if a.activity.unjudged:
        out.append("No reference range on " + ", ".join(md(x) for x in a.activity.unjudged) + ": activity not judged.")
    if a.age is None:
        out.append("Age not in the record; these options are for adults.")
    return out


def _situations(a: Assessment, knowledge: Knowledge, cites: Citations) -> list[str]:
    """One line per situation the record shows (pathways.yaml text), most important first."""
    out = []

    def line(situation: str, lead: str = "") -> None:
        p = knowledge.pathway(situation)
        if p is not None:
            out.append(f"{lead}{p.text} {cites.cite(p.references)}".strip())

    if "imnm" in a.phenotypes:
        lead = f"**{md(names_list(a.statins, 'and').capitalize())} active: stop the statin.** " if a.statins else ""
        line("imnm", lead)
    if "pregnancy" in a.conditions:
        line("pregnancy")
    if "cancer" in a.phenotypes:
        line("cancer")
    elif a.cancer_screen_first:
        line("new_dm")
    for situation in _screening_situations(a):
        line(situation)
    return out


def _screening_situations(a: Assessment) -> list[str]:
    """Lung work-up the record lacks: anti-MDA5 without an ILD screen, ILD without lung function tests."""
    out = []
    if "anti_mda5" in a.phenotypes and "ild" not in a.phenotypes:
        out.append("anti_mda5_without_ild")
    if "ild" in a.phenotypes and "anti_mda5" not in a.phenotypes and not a.activity.lung:
        out.append("ild_without_lung_function")  # anti-MDA5 with ILD: the urgent card says what to do
    return out


# --- options --------------------------------------------------------------------------------


def _check_for(r: RankedOption, a: Assessment) -> str | None:
    classes = r.option.combination_of or (r.option.therapy_class,)
    for item in a.safety:
        if item.caution.kind == "screening" and item.caution.applies_to and set(item.caution.applies_to) & set(classes):
            return item.caution.title
    return None


def _option_view(r: RankedOption, a: Assessment, knowledge: Knowledge, cites: Citations) -> dict[str, Any]:
    o = r.option
    cls = knowledge.classes[o.therapy_class]
    state = next((s for s in a.states if s.therapy_class == o.therapy_class), None)
    return {
        "label": o.label,
        "line": o.card_line,
        "mode": o.mode,
        "evidence": EVIDENCE_WORDS.get(o.study_type, o.study_type),
        "weeks": cls.adequate_trial.weeks if cls.adequate_trial else None,
        "check": _check_for(r, a),
        "retreat": r.retreat,
        "retry": r.retry,
        "retry_weeks": state.weeks if state is not None else None,
        "favoured": [f.text for f in r.favoured],
        "warnings": [w.text for w in r.warnings],
        "held": [h.text for h in r.held],
        "ask_why": r.ask_why,
        "orderable": r.orderable,
        "cites": cites.cite(
            dict.fromkeys(
                [
                    *o.references[:2],
                    *(x for f in r.favoured for x in f.references[:1]),
                    *(x for w in r.warnings for x in w.references[:1]),
                ]
            )
        ),
    }


def draft_order(agent: Agent, facts: PatientFacts) -> Action:
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": f"Patient/{facts.patient_id}"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM_SYSTEM, "code": agent.rxnorm_in, "display": agent.name}],
            "text": agent.name,
        },
    }
    return Action(
        type="create",
        resource=resource,
        description=f"Draft proposal for {agent.name}; dose, route and schedule to be set by the prescriber",
    )


def _suggestion(label: str, agents: Iterable[Agent], facts: PatientFacts) -> Suggestion:
    return Suggestion(label=label, uuid=new_uuid(), actions=tuple(draft_order(x, facts) for x in agents))


def _option_suggestions(a: Assessment, facts: PatientFacts) -> tuple[Suggestion, ...]:
    out = []
    for r in a.drafts:
        # A combination orders every agent (actions in one suggestion are applied together);
        # otherwise the first agent, the one the sources describe best.
        agents = r.option.agents if r.option.combination_of else r.option.agents[:1]
        verb = "Re-treat with" if r.retreat else "Add" if r.option.mode == "add_on" else "Start"
        # The option's own label where it names one agent ("IV immune globulin", not the RxNorm "immunoglobulin G").
        names = lower_first(r.option.label) if len(r.option.agents) == 1 else " + ".join(x.name for x in agents)
        out.append(_suggestion(f"{verb} {names} (draft order{'s' if len(agents) > 1 else ''})", agents, facts))
    return tuple(out)


# --- cards ------------------------------------------------------------------------------------


def _lists_options(a: Assessment) -> bool:
    return a.route in (FIRST_LINE, OPTIMISE, NEXT_LINE) or (
        a.route == JUDGE_RESPONSE and "skin_predominant" in a.phenotypes
    )


def _main(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date, preview: bool) -> CardDraft | None:
    cites = Citations(knowledge)
    failed = [s for s in a.failed]
    gc = next((s for s in a.states if s.therapy_class == "glucocorticoid" and s.trial.ongoing), None)
    top = a.options[:3]
    situations = _situations(a, knowledge, cites)  # shown right under "Why", so cited first
    context: dict[str, Any] = dict(
        situations=situations,
        disease=a.disease,
        activity=activity_lines(a, today),
        active=a.activity.active,
        # Only the cards that list options number their references; the others name them (top_names).
        options=[_option_view(r, a, knowledge, cites) for r in top] if _lists_options(a) else [],
        more=max(0, len(a.options) - len(top)),
        top_names=[r.option.label for r in top],
        failed=tried_line(failed, knowledge),
        failed_count=len(failed),
        failed_names=[
            ", ".join(agent_name(x, knowledge) for x in s.trial.agents) or lower_first(s.label) for s in failed
        ],
        intolerant=tried_line((s for s in a.states if s.outcome == INTOLERANT), knowledge),
        skin="skin_predominant" in a.phenotypes,
        incomplete=a.medication_incomplete,
        retreat=[lower_first(r.option.label) for r in top if r.retreat],
        notes=_notes(facts, a),
        drafts=bool(a.drafts),
        preview=preview,
        monitoring=_monitoring_line(facts, a),
        gc=gc and {"agents": ", ".join(md(x) for x in gc.trial.agents), "weeks": gc.weeks},
        in_progress=[
            {
                "label": s.label,
                "weeks": s.weeks,
                "window": s.window_weeks,
                "start": s.episode_start.isoformat() if s.episode_start else "unknown",
            }
            for s in a.in_progress
        ],
        judge=[
            {"label": s.label, "weeks": s.weeks} for s in a.states if s.outcome == "judge" and s.counts_as_second_agent
        ],
        stopped_early=[
            {"label": s.label, "weeks": s.weeks, "intolerance": s.outcome == INTOLERANT}
            for s in a.states
            if s.status == "stopped_early" and s.counts_as_second_agent
        ],
        refer=None,
        not_favoured=[],
        reassess=[],
        removed=[o.label for o, _ in a.removed],
        recent_days=int(knowledge.threshold("activity-lab-recent-days")),
    )
    if a.refer:
        p = knowledge.pathway("many_failures")
        context["refer"] = p.text if p is not None else None
    if a.not_favoured:
        context["not_favoured"] = [
            f"{n.label.split(' (')[0]}: {n.card_line} {cites.cite(n.references)}" for n in a.not_favoured
        ]
    if a.reassess:
        context["reassess"] = [c.title for c in a.reassess]  # their sources are on the full view
    kind = {
        FIRST_LINE: "first-line",
        OPTIMISE: "optimise",
        IN_PROGRESS_ONLY: "in-progress",
        NEXT_LINE: "next-line",
        JUDGE_RESPONSE: "judge-response",
        NO_MEDICATION_DATA: "no-medication-data",
        LABS_UNAVAILABLE: "labs-unavailable",
    }.get(a.route)
    if kind is None:
        return None
    summary, detail = render_template(kind, **context)
    # Warning when something in the record changes what is safe: a statin in IMNM, falling lung function,
    # pregnancy, active cancer. Critical is kept for the urgent anti-MDA5 card.
    warning = (
        bool(a.statins and "imnm" in a.phenotypes)
        or "lung_function_falling" in a.phenotypes
        or "pregnancy" in a.conditions
        or "active_cancer" in a.conditions
    )
    return CardDraft(
        kind=kind,
        summary=summary,
        detail=detail,
        indicator="warning" if warning else "info",
        cites=cites,
        suggestions=_option_suggestions(a, facts),
        overrides=kind not in ("no-medication-data", "labs-unavailable"),
    )


def _urgent(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date) -> CardDraft | None:
    if a.urgent is None:
        return None
    cites = Citations(knowledge)
    p = knowledge.pathway("anti_mda5")
    lung = [m for m in a.activity.lung if m.group == "fvc"] + [m for m in a.activity.lung if m.group == "dlco"]
    fvc = next(iter(lung), None)
    ild = next(
        (d for d in facts.diagnoses if d.group in ("interstitial_lung_disease", "dm_pm_with_respiratory_involvement")),
        None,
    )
    referral = knowledge.pathway("urgent_referral")
    stop = knowledge.pathway("stop_antiproliferative")
    summary, detail = render_template(
        "urgent-anti-mda5",
        mda5=md(a.phenotypes["anti_mda5"]),
        ild=f"ILD recorded{' ' + ild.onset.isoformat() if ild and ild.onset else ''}",
        lung=[measure_line(m, today) for m in lung],
        fvc=fvc
        and {
            "from": f"{fvc.best.value:g}" if fvc.best and fvc.best.value is not None else None,
            "to": f"{fvc.latest.value:g}" if fvc.latest.value is not None else None,
        },
        falling=a.urgent.critical,
        text=p.text if p else "",
        cites=cites.cite(p.references) if p else "",
        agents=[x.name for x in a.urgent.agents],
        held_back=[md(x) for x in a.urgent.held_back],
        fallback=p.summary if p else "Anti-MDA5 with ILD",
        referral=referral.text if referral is not None and a.urgent.critical else None,
        stop=f"Stop {names_list([md(x) for x in a.urgent.stop], 'and')} {stop.text}"
        if stop and a.urgent.stop
        else None,
    )
    suggestions: tuple[Suggestion, ...] = ()
    if a.urgent.agents:
        names = " + ".join(x.name for x in a.urgent.agents)
        suggestions = (
            _suggestion(
                f"Start combination: {names} with high-dose glucocorticoid (draft orders)", a.urgent.agents, facts
            ),
        )
    return CardDraft(
        kind="urgent-anti-mda5",
        summary=summary,
        detail=detail,
        indicator="critical" if a.urgent.critical else "warning",
        cites=cites,
        suggestions=suggestions,
    )


def _found_lines(facts: PatientFacts, item: SafetyItem) -> list[str]:
    out = []
    for token in item.found:
        kind, _, key = token.partition(":")
        if kind == "lab":
            lab = latest(facts, key)
            if lab is not None:
                out.append(f"{md(lab.label)} {value_text(lab)} on {when_text(lab)}")
        elif kind == "condition":
            out += [md(d.label) for d in facts.diagnoses if d.group == key]
        else:
            out.append(md(token))  # a risk-factor sentence built from knowledge text and numbers
    return out


def _monitoring_line(facts: PatientFacts, a: Assessment) -> str | None:
    """The "while taking" checks in one line of the main card (their detail is on the full view)."""
    parts = []
    for i in a.safety:
        if i.caution.kind != "monitoring":
            continue
        found = _found_lines(facts, i)
        parts.append(f"{lower_first(i.caution.title)}" + (f" ({'; '.join(found)})" if found else ""))
    return "; ".join(parts) or None


def _safety(facts: PatientFacts, a: Assessment, knowledge: Knowledge, main_kind: str | None) -> CardDraft | None:
    """The checks before starting what this call drafts; with no main card, also the checks while taking what
    the patient takes now (with a main card those are one line on it). The card depends on the card whose
    drafts it checks: hidden with it, never shown alone for drafts the clinician cannot see."""
    safety = tuple(i for i in a.safety if main_kind is None or i.caution.kind == "screening")
    if not safety:
        return None
    cites = Citations(knowledge)
    items = [
        {
            "title": i.caution.title,
            "text": i.caution.text,
            # "(JAK inhibitor)" after "JAK inhibitor boxed warning" says nothing new
            "classes": ", ".join(c for c in i.classes if c.lower() not in i.caution.title.lower()),
            "cites": cites.cite(i.caution.references),
            "found": _found_lines(facts, i),
            "labs": bool(i.caution.labs),
            "kind": i.caution.kind,
            "open": i.open,
        }
        for i in safety
    ]
    drafted = [
        agent_name(x.name, knowledge)
        for r in a.drafts
        for x in (r.option.agents if r.option.combination_of else r.option.agents[:1])
    ]
    drafted += [agent_name(x.name, knowledge) for x in (a.urgent.agents if a.urgent else ())]
    summary, detail = render_template(
        "safety",
        items=items,
        drafted=list(dict.fromkeys(drafted)),
        screening=sum(1 for i in safety if i.caution.kind == "screening"),
        monitoring=[i.caution.title for i in safety if i.caution.kind == "monitoring"],
    )
    harm_open = any(i.open and i.caution.harm for i in safety)
    return CardDraft(
        kind="safety",
        summary=summary,
        detail=detail,
        indicator="warning" if harm_open else "info",
        cites=cites,
        overrides=True,
        depends_on=main_kind or "",
    )


def _pathway_card(knowledge: Knowledge, situation: str, a: Assessment) -> CardDraft | None:
    p = knowledge.pathway(situation)
    if p is None:
        return None
    cites = Citations(knowledge)
    summary, detail = render_template(
        "pathway",
        summary=p.summary,
        text=p.text,
        cites=cites.cite(p.references),
        also=a.disease if situation == "ibm" and a.disease != "myositis" else None,
    )
    return CardDraft(kind=f"pathway-{p.id}", summary=summary, detail=detail, indicator=p.indicator, cites=cites)


def render_cards(
    facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date, preview_url: str | None
) -> list[Card]:
    """Most important first: the urgent card, the main card, then the safety checks they need."""
    if a.route == NONE:
        return []
    if a.route in (IBM, JUVENILE):
        d = _pathway_card(knowledge, "ibm" if a.route == IBM else "juvenile", a)
        return [make_card(knowledge, d, preview_url, a)] if d is not None else []
    lead = (
        _urgent(facts, a, knowledge, today)
        if a.urgent is not None
        else _main(facts, a, knowledge, today, preview_url is not None)
    )
    drafts = [lead, _safety(facts, a, knowledge, lead.kind if lead is not None else None)]
    if lead is None:
        # No main card (quiet disease, a trial in its window): lung work-up the record lacks still gets one.
        drafts += [_pathway_card(knowledge, s, a) for s in _screening_situations(a)]
    return [make_card(knowledge, d, preview_url, a) for d in drafts if d is not None]
