"""Assessment -> CDS Hooks cards. Wording comes from the knowledge base; this module only
arranges it (tables, numbered references, suggestions) and escapes what the record says."""

from __future__ import annotations

import os
import random
import re
import uuid
from functools import lru_cache
from datetime import date
from typing import Any, Iterable

from mappings.model import LabResult, PatientFacts

from .knowledge_base import Agent, Knowledge, Reference
from .models import Action, Card, Coding, Link, Source, Suggestion
from .phenotype import latest
from .rules import (FIRST_LINE, IBM, IN_PROGRESS_ONLY, JUVENILE, NEXT_LINE, NO_MEDICATION_DATA, NONE,
                    Assessment, RankedOption)
from .trials import IN_PROGRESS, ONGOING, STOPPED_EARLY, ClassState
from .vocab import RXNORM_SYSTEM

__all__ = ["render_cards", "RECENT_CK_DAYS"]

RECENT_CK_DAYS = 182  # a CK older than ~6 months is not evidence of activity now

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|])")
_TAG_NOTE = {"seed-only": " *(seed-only: only the seed documents say this)*",
             "convention": " *(our convention)*", "unverified": " *(cited papers unverified)*", "evidence": ""}
_STATUS_TEXT = {IN_PROGRESS: "in progress", ONGOING: "ongoing", "stopped": "stopped",
                STOPPED_EARLY: "stopped before an adequate trial"}


# Card and suggestion uuids need uniqueness, not secrecy (feedback that quotes them is authenticated):
# a per-process generator seeded from the OS avoids a getrandom() system call per uuid.
_UUID_RANDOM = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _UUID_RANDOM.seed(os.urandom(32)))  # forked workers must not repeat uuids


def _new_uuid() -> str:
    return str(uuid.UUID(int=_UUID_RANDOM.getrandbits(128), version=4))


def md(text: str) -> str:
    """Escape record-supplied text for GitHub markdown (no links, HTML or table breaks)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


class _Citations:
    """Numbers references in order of first citation within one card."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.order: list[str] = []
        self._number: dict[str, int] = {}

    def cite(self, ids: Iterable[str]) -> str:
        numbers = []
        for rid in ids:
            number = self._number.get(rid)
            if number is None:
                self.order.append(rid)
                number = self._number[rid] = len(self.order)
            numbers.append(f"[[{number}]]({self.knowledge.references[rid].url})")
        return (" " + "".join(numbers)) if numbers else ""

    def section(self) -> list[str]:
        if not self.order:
            return []
        lines = ["", "**References**", ""]
        for n, rid in enumerate(self.order, 1):
            lines.append(f"{n}. {_reference_line(self.knowledge.references[rid])}")
        return lines

    def links(self, limit: int) -> tuple[Link, ...]:
        return tuple(_reference_link(n, self.knowledge.references[rid]) for n, rid in enumerate(self.order[:limit], 1))


@lru_cache(maxsize=4096)
def _reference_link(number: int, ref: Reference) -> Link:
    label = f"[{number}] {ref.short}: {ref.title}"
    return Link(label=label if len(label) <= 100 else label[:97] + "...", url=ref.url)


@lru_cache(maxsize=None)
def _reference_line(ref: Reference) -> str:
    """A reference as one markdown line; knowledge text only, so it is built once per process."""
    flag = {"not_verified": " *(not verified)*", "partial": " *(partly verified)*"}.get(ref.verification, "")
    year = f" {ref.year}" if ref.year else ""
    authors = ref.authors if ref.authors.endswith(".") else ref.authors + "."
    return f"{md(authors)} {md(ref.title_sentence)} *{md(ref.journal)}*{year}. [{_link_word(ref)}]({ref.url}){flag}"


def _link_word(ref: Reference) -> str:
    if ref.pmid:
        return f"PubMed {ref.pmid}"
    if ref.doi:
        return f"doi:{ref.doi}"
    if ref.web:
        return "web page"
    return "PubMed search"


# --- shared pieces --------------------------------------------------------------------


def _source(knowledge: Knowledge) -> Source:
    system, code, display = knowledge.meta.topic
    return Source(label=knowledge.meta.source_label, url=knowledge.source_url, topic=Coding(system, code, display))


def _override_reasons(knowledge: Knowledge) -> tuple[Coding, ...]:
    system = knowledge.meta.override_reason_system
    return tuple(Coding(system, code, display) for code, display in knowledge.meta.override_reasons)


def _links(knowledge: Knowledge, cites: _Citations, preview_url: str | None) -> tuple[Link, ...]:
    preview = (Link(label="Open the myositis-cds preview page", url=preview_url),) if preview_url else ()
    return preview + cites.links(knowledge.meta.max_reference_links)


def _card(knowledge: Knowledge, kind: str, summary: str, indicator: str, lines: list[str], cites: _Citations,
          preview_url: str | None, suggestions: tuple[Suggestion, ...] = (), overrides: bool = False) -> Card:
    detail = "\n".join([*lines, *cites.section()]).strip()
    return Card(
        kind=kind, uuid=_new_uuid(), summary=summary, indicator=indicator, source=_source(knowledge),
        detail=detail or None, suggestions=suggestions,
        selection_behavior="at-most-one" if suggestions else None,
        override_reasons=_override_reasons(knowledge) if overrides else (),
        links=_links(knowledge, cites, preview_url),
    )


def _summary(knowledge: Knowledge, key: str, **values: Any) -> str:
    text = knowledge.meta.summaries[key].format(**values)
    return text if len(text) < 140 else text[:136] + "..."


def _fmt_lab(lab: LabResult) -> str:
    if lab.value is not None:
        value = f"{lab.value:g}" + (f" {md(lab.unit)}" if lab.unit else "")
    else:
        value = md(lab.value_text or "result without value")
    when = f" on {lab.date.isoformat()}" if lab.date else " (undated)"
    return value + when


def _activity(facts: PatientFacts, today: date) -> list[str]:
    """Latest CK and trend, aldolase; says plainly when there is none (never invents activity)."""
    lines = ["**Activity evidence in the record** (the clinician judges activity; this card does not)", ""]
    ck = sorted(facts.labs_in("creatine_kinase"), key=lambda lab: lab.date or date.min)
    if not ck:
        lines.append("- No CK in the record.")
    else:
        last = ck[-1]
        recent = last.date is not None and (today - last.date).days <= RECENT_CK_DAYS
        prefix = "Latest CK" if recent else "No recent CK in the record; latest CK"
        text = f"- {prefix}: {_fmt_lab(last)}"
        earlier = [lab for lab in ck[-4:-1] if lab.value is not None]
        if earlier and last.value is not None:
            trend = ", ".join(_fmt_lab(lab) for lab in reversed(earlier))
            previous = earlier[-1].value
            direction = "higher than" if last.value > previous * 1.1 else "lower than" if last.value < previous * 0.9 else "similar to"
            text += f"; {direction} the previous result (earlier: {trend})"
        lines.append(text + ".")
    for group in ("aldolase",):
        lab = latest(facts, group)
        if lab is not None:
            lines.append(f"- Latest {md(lab.label)}: {_fmt_lab(lab)}.")
    return lines


def _record_notes(facts: PatientFacts, assessment: Assessment) -> list[str]:
    lines: list[str] = []
    if facts.gaps:
        lines += ["", "**Data not available**", ""]
        lines += [f"- {md(g.resource_type)}: {md(g.reason)}" for g in facts.gaps]
        if assessment.medication_incomplete:
            lines.append("- Medication data is incomplete: \"not tried\" below means *not in the available record*.")
    if facts.unrecognised_medications:
        lines += ["", "**Medications not recognised** (check by hand; they may belong to a listed class)", ""]
        lines += [f"- {md(m)}" for m in facts.unrecognised_medications]
    if facts.notes:
        lines += ["", "**Record notes**", ""] + [f"- {md(n)}" for n in facts.notes]
    if assessment.age is None:
        lines += ["", "- Age is not in the record; these options are for adults."]
    return lines


def _dates(state: ClassState) -> str:
    t = state.trial
    start = t.first_date.isoformat() if t.first_date else "start unknown"
    if t.ongoing:
        span = f"since {start}"
    else:
        end = t.last_date.isoformat() if t.last_date else "end unknown"
        span = f"{start} to {end}"
    if state.weeks is not None:
        span += f" ({state.weeks} wk)"
    return span


def _tried_table(assessment: Assessment) -> list[str]:
    lines = ["", "**Tried so far** (from the medication record)", "",
             "| Class | Agents | Dates | Status | Recognised by |", "|---|---|---|---|---|"]
    for s in assessment.states:
        agents = ", ".join(md(a) for a in s.trial.agents) or "-"
        status = _STATUS_TEXT.get(s.status, s.status)
        if s.status in (IN_PROGRESS, STOPPED_EARLY) and s.window_weeks:
            status += f" (window {s.window_weeks} wk)"
        recognised = "; ".join(dict.fromkeys(md(d.matched) for d in s.trial.drugs)) or md(", ".join(s.trial.matched_by)) or "-"
        lines.append(f"| {md(s.label)} | {agents} | {_dates(s)} | {status} | {recognised} |")
    return lines


def _option_line(n: int, r: RankedOption, assessment: Assessment, knowledge: Knowledge, cites: _Citations) -> str:
    o = r.option
    level = o.evidence_level.replace("_", " ")
    text = f"{n}. **{o.label}** (line {o.line}; {level} evidence, {o.study_type}): {o.rationale}{_TAG_NOTE[o.rationale_tag]}{cites.cite(o.references)}"
    for f in r.favoured:
        evidence = md(assessment.phenotypes[f.phenotype])
        text += f" *Favoured here* ({evidence}): {f.text}{_TAG_NOTE[f.tag]}{cites.cite(f.references)}."
    for a in r.warnings:
        evidence = md(assessment.conditions[a.condition])
        text += f" **Caution** ({evidence}): {a.text}{_TAG_NOTE[a.tag]}{cites.cite(a.references)}."
    if not _orderable(r, assessment):
        needs = ", ".join(p.replace("_", " ") for p in o.draft_order_when)
        text += f" *For severe disease only: no draft order unless the record shows {needs}.*"
    cls = knowledge.classes[o.therapy_class]
    if cls.adequate_trial is not None:
        w = cls.adequate_trial
        text += f" Adequate trial: {w.text}{_TAG_NOTE[w.tag]}{cites.cite(w.references)}."
    if len(o.agents) > 1:
        text += " Agents: " + ", ".join(a.name for a in o.agents) + "."
    return text


def _orderable(r: RankedOption, assessment: Assessment) -> bool:
    """An option restricted to severe phenotypes is offered as a draft order only when one is present."""
    when = r.option.draft_order_when
    return not when or any(p in assessment.phenotypes for p in when)


def _suggestions(assessment: Assessment, facts: PatientFacts) -> tuple[Suggestion, ...]:
    return tuple(_suggestion(r, facts) for r in assessment.options if _orderable(r, assessment))


def _draft_order(agent: Agent, facts: PatientFacts) -> Action:
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
    return Action(type="create", resource=resource,
                  description=f"Draft proposal for {agent.name}; dose, route and schedule to be set by the prescriber")


def _suggestion(r: RankedOption, facts: PatientFacts) -> Suggestion:
    # A combination orders every agent (actions in one suggestion are applied together);
    # otherwise the first agent, the one the sources describe best.
    agents = r.option.agents if r.option.combination_of else r.option.agents[:1]
    names = " + ".join(a.name for a in agents)
    return Suggestion(label=f"Consider {r.option.label}: draft {names} order{'s' if len(agents) > 1 else ''}",
                      uuid=_new_uuid(), actions=tuple(_draft_order(a, facts) for a in agents))


def _options_block(assessment: Assessment, knowledge: Knowledge, cites: _Citations, heading: str) -> list[str]:
    lines = ["", heading, ""]
    for n, r in enumerate(assessment.options, 1):
        lines.append(_option_line(n, r, assessment, knowledge, cites))
    if assessment.removed:
        lines += ["", f"**Not listed because of {md(', '.join(sorted({a.condition.replace('_', ' ') for _, a in assessment.removed})))} in the record**:"]
        for option, avoid in assessment.removed:
            lines.append(f"- {option.label}: {avoid.text}{_TAG_NOTE[avoid.tag]}{cites.cite(avoid.references)}")
    return lines


# --- cards -----------------------------------------------------------------------------


def _next_line(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date, preview_url: str | None) -> Card:
    cites = _Citations(knowledge)
    n = len(a.options)
    waiting = [s for s in a.in_progress if s.counts_as_second_agent]
    if n == 0:
        summary = _summary(knowledge, "next_line_none", disease=a.disease)
    elif waiting:
        summary = _summary(knowledge, "next_line_waiting", disease=a.disease, n=n, label=waiting[0].label)
    elif a.medication_incomplete:
        summary = _summary(knowledge, "next_line_incomplete", disease=a.disease, n=n)
    else:
        summary = _summary(knowledge, "next_line", disease=a.disease, n=n)
    lines = _activity(facts, today) + _tried_table(a)
    word = "not in the available record" if a.medication_incomplete else "not yet tried"
    lines += _options_block(a, knowledge, cites, f"**Options {word}** (ranked by phenotype, line and evidence; evidence is mostly low, so *consider*, not *recommended*)")
    if a.not_favoured:
        tried = {s.therapy_class for s in a.states}
        parts = []
        for nf in a.not_favoured:
            already = " (already tried here)" if nf.therapy_class in tried else ""
            parts.append(f"{nf.label}{already}: {nf.text}{_TAG_NOTE[nf.tag]}{cites.cite(nf.references)}")
        lines += ["", "**Considered, not favoured**: " + "; ".join(parts) + "."]
    if waiting:
        names = ", ".join(md(s.label.lower()) for s in waiting)
        lines += ["", f"**No draft orders while {names} {'is' if len(waiting) == 1 else 'are'} inside the adequate-trial "
                      "window**: judge the effect first; the options above are for planning if it fails."]
    elif any(s.in_progress for s in a.states):
        lines += ["", "Classes marked *in progress* are inside their adequate-trial window: judge their effect before switching."]
    lines += _record_notes(facts, a)
    suggestions = () if waiting else _suggestions(a, facts)
    return _card(knowledge, "next-line", summary, "info", lines, cites, preview_url, suggestions, overrides=True)


def _first_line(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date, preview_url: str | None) -> Card:
    cites = _Citations(knowledge)
    summary = _summary(knowledge, "first_line", disease=a.disease)
    lines = _activity(facts, today)
    if a.states:
        lines += _tried_table(a)
    lines += _options_block(a, knowledge, cites, "**First-line steroid-sparing options** (alongside glucocorticoid; *consider*)")
    lines += _record_notes(facts, a)
    suggestions = _suggestions(a, facts)
    return _card(knowledge, "first-line", summary, "info", lines, cites, preview_url, suggestions, overrides=True)


def _in_progress(facts: PatientFacts, a: Assessment, state: ClassState, knowledge: Knowledge, preview_url: str | None) -> Card:
    cites = _Citations(knowledge)
    window = knowledge.classes[state.therapy_class].adequate_trial
    assert window is not None and state.weeks is not None  # in progress implies both
    summary = _summary(knowledge, "in_progress", label=state.label, weeks=state.weeks, window=window.weeks)
    agents = ", ".join(md(x) for x in state.trial.agents) or md(state.label)
    start = state.episode_start.isoformat() if state.episode_start else "an unknown date"
    lines = [
        f"{agents} started {start}, {state.weeks} weeks ago. Adequate trial: {window.text}{_TAG_NOTE[window.tag]}{cites.cite(window.references)}.",
        "",
        f"It is too early to call {md(state.label.lower())} failed; it is not counted as failed when listing options.",
    ]
    return _card(knowledge, "in-progress", summary, "info", lines, cites, preview_url)


def _pathway(knowledge: Knowledge, situation: str, a: Assessment, preview_url: str | None, extra: list[str] | None = None) -> Card | None:
    p = knowledge.pathway(situation)
    if p is None:
        return None
    cites = _Citations(knowledge)
    lines = [f"{p.text}{_TAG_NOTE[p.tag]}{cites.cite(p.references)}"]
    evidence = {"imnm": a.phenotypes.get("imnm"), "anti_mda5": a.phenotypes.get("anti_mda5"),
                "pregnancy": a.conditions.get("pregnancy"), "cancer": a.phenotypes.get("cancer")}.get(situation)
    if evidence:
        lines += ["", f"In the record: {md(evidence)}."]
    if situation == "pregnancy" and a.removed:
        lines += ["", "Left out of the options here: " + ", ".join(o.label for o, _ in a.removed) + "."]
    lines += extra or []
    return _card(knowledge, f"pathway-{p.id}", p.summary, p.indicator, lines, cites, preview_url)


def _lab_evidence(facts: PatientFacts, groups: Iterable[str]) -> list[str]:
    out = []
    for group in groups:
        lab = latest(facts, group)
        if lab is not None:
            out.append(f"{md(lab.label)}: {_fmt_lab(lab)}")
    return out


def _screening(facts: PatientFacts, a: Assessment, knowledge: Knowledge, preview_url: str | None) -> Card | None:
    if not a.screening:
        return None
    cites = _Citations(knowledge)
    shown = {r.option.therapy_class for r in a.options}
    # Without options (a steroid-sparing trial still in its window) the checks are about current therapy.
    lead = "Checks before starting the options listed:" if a.options else "Checks for the current therapy:"
    lines = [lead, ""]
    for c in a.screening:
        title = f"**{c.title}**"
        applies = ", ".join(knowledge.classes[x].label for x in c.applies_to if x in shown)
        line = f"- {title} ({applies}): " if applies else f"- {title} "
        line += f"{c.text}{_TAG_NOTE[c.tag]}{cites.cite(c.references)}"
        found = _lab_evidence(facts, c.labs)
        conditions = [d.label for d in facts.diagnoses if d.group in c.conditions]
        if found or conditions:
            line += " In the record: " + "; ".join([*found, *(md(x) for x in conditions)]) + "."
        elif c.labs:
            line += " No result in the record."
        lines.append(line)
    key = "screening" if a.options else "safety_current"
    summary = _summary(knowledge, key, n=len(a.screening), checks=", ".join(c.title for c in a.screening))
    indicator = "warning" if any(c.harm for c in a.screening) else "info"
    return _card(knowledge, "caution-screening", summary, indicator, lines, cites, preview_url)


def _reassess(facts: PatientFacts, a: Assessment, knowledge: Knowledge, preview_url: str | None) -> Card | None:
    if not a.reassess:
        return None
    cites = _Citations(knowledge)
    lines = ["Before calling the disease refractory and adding drugs:", ""]
    for c in a.reassess:
        title = c.title if c.title.endswith("?") else c.title + ":"
        lines.append(f"- **{title}** {c.text}{_TAG_NOTE[c.tag]}{cites.cite(c.references)}")
    flags = []
    steroid = [d.label for d in facts.diagnoses if d.group == "drug_induced_or_steroid_myopathy"]
    if steroid:
        flags.append("drug-induced/steroid myopathy is recorded (" + ", ".join(md(x) for x in steroid) + ")")
    if a.is_dm:
        risk = [md(a.phenotypes[p]) for p in ("anti_tif1_gamma", "dysphagia", "skin_ulceration") if p in a.phenotypes]
        if a.age is not None and a.age > 40:
            risk.append(f"age {a.age}")
        if risk:
            flags.append("cancer risk features: " + "; ".join(risk))
    if flags:
        lines += ["", "In the record: " + "; ".join(flags) + "."]
    indicator = "warning" if steroid else "info"
    return _card(knowledge, "caution-reassess", _summary(knowledge, "reassess"), indicator, lines, cites, preview_url)


def render_cards(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date, preview_url: str | None) -> list[Card]:
    if a.route == NONE:
        return []
    if a.route in (IBM, JUVENILE):
        situation = "ibm" if a.route == IBM else "juvenile"
        extra = []
        if a.route == IBM and a.disease != "myositis":
            extra = ["", f"The record also codes {a.disease}; reconcile the diagnosis before any escalation."]
        card = _pathway(knowledge, situation, a, preview_url, extra)
        return [card] if card is not None else []

    cards: list[Card] = []
    if a.route == NO_MEDICATION_DATA:
        cites = _Citations(knowledge)
        lines = ["No medication records could be read, so the card cannot tell which therapies were tried or suggest the next one.",
                 *_record_notes(facts, a)]
        cards.append(_card(knowledge, "no-medication-data", _summary(knowledge, "no_medication_data", disease=a.disease),
                           "info", lines, cites, preview_url))
    elif a.route == FIRST_LINE:
        cards.append(_first_line(facts, a, knowledge, today, preview_url))
    in_progress = [_in_progress(facts, a, s, knowledge, preview_url) for s in a.in_progress if s.counts_as_second_agent]
    if a.route == NEXT_LINE:
        # A trial still inside its window comes first: continue and judge it before switching.
        cards += in_progress
        cards.append(_next_line(facts, a, knowledge, today, preview_url))
    else:
        cards += in_progress
    for situation in a.situations:
        card = _pathway(knowledge, situation, a, preview_url)
        if card is not None:
            cards.append(card)
    for card in (_screening(facts, a, knowledge, preview_url), _reassess(facts, a, knowledge, preview_url)):
        if card is not None:
            cards.append(card)
    return cards
