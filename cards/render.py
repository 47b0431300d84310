"""Assessment -> CDS Hooks cards.

Python decides which cards fire (cards/rules.py) and gathers what each says into plain values;
the wording is in cards/templates/ (one Markdown/Jinja template per card kind, each with a
``summary`` and a ``detail`` block) and in the knowledge YAML. Record-supplied text is escaped
here, once, before a template sees it. References are numbered in order of first citation and
go in the card's ``links`` (never as inline links: in the HL7 sandbox those navigate the EHR tab
away from the chart).
"""

from __future__ import annotations

import os
import random
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jinja2

from mappings.model import LabResult, PatientFacts

from .activity import Measure
from .knowledge_base import Agent, Knowledge, Option, Reference
from .models import Action, Card, Coding, Link, Source, Suggestion
from .phenotype import latest
from .rules import (FIRST_LINE, IBM, IN_PROGRESS_ONLY, JUDGE_RESPONSE, JUVENILE, LABS_UNAVAILABLE, NEXT_LINE,
                    NO_MEDICATION_DATA, NONE, OPTIMISE, Assessment, RankedOption, SafetyItem)
from .trials import INTOLERANT, ClassState
from .vocab import RXNORM_SYSTEM

__all__ = ["render_cards", "render_full_view", "TEMPLATE_DIRECTORY", "EVIDENCE_WORDS", "md"]

TEMPLATE_DIRECTORY = Path(__file__).resolve().parent / "templates"

# Study designs in the words a clinician uses (the knowledge tags never reach a card).
EVIDENCE_WORDS = {"RCT": "randomised trial", "open-label": "open-label study", "cohort": "cohort study",
                  "case series": "case series", "case report": "case report", "guideline": "guideline",
                  "expert opinion": "expert opinion"}

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|])")

# Card and suggestion uuids need uniqueness, not secrecy (feedback that quotes them is authenticated):
# a per-process generator seeded from the OS avoids a getrandom() system call per uuid.
_UUID_RANDOM = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _UUID_RANDOM.seed(os.urandom(32)))  # forked workers must not repeat uuids


def _new_uuid() -> str:
    return str(uuid.UUID(int=_UUID_RANDOM.getrandbits(128), version=4))


def md(text: str) -> str:
    """Escape record-supplied text for GitHub markdown (no links, HTML or table breaks)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _fit(text: str, limit: int = 139) -> str:
    """A summary must stay under 140 characters (CDS Hooks); cut at a word, never mid-word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 3].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "..."


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    # Autoescape off: the output is Markdown, not HTML; record text is escaped by md() before it gets here.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(directory), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=False)
    env.filters["fit"] = _fit
    env.filters["names"] = _names
    env.filters["lowerfirst"] = _lowerfirst
    return env


def _lowerfirst(text: str) -> str:
    """'Methotrexate' -> 'methotrexate' mid-sentence; 'TPMT / NUDT15' and 'IV ...' stay as they are."""
    return text[:1].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def _names(items: Iterable[str], conjunction: str = "or") -> str:
    """'a', 'a or b', 'a, b or c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def _render(kind: str, **context: Any) -> tuple[str, str]:
    """(summary, detail) from the kind's template."""
    template = _environment(str(TEMPLATE_DIRECTORY)).get_template(f"{kind}.md.j2")
    ctx = template.new_context(context)
    summary = "".join(template.blocks["summary"](ctx))
    detail = "".join(template.blocks["detail"](ctx))
    detail = re.sub(r"\n{3,}", "\n\n", detail).strip()
    return _fit(summary), detail


# --- citations ----------------------------------------------------------------------------


class _Citations:
    """Numbers references in order of first citation within one card; they become its links."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.limit = knowledge.meta.max_reference_links
        self.order: list[str] = []
        self._number: dict[str, int] = {}

    def cite(self, ids: Iterable[str]) -> str:
        """'\\[1\\]\\[2\\]' for the card text; a reference past the link limit gets no number (every number
        must match a link; the full list is on the preview page)."""
        numbers = []
        for rid in ids:
            number = self._number.get(rid)
            if number is None:
                if len(self.order) >= self.limit:
                    continue
                self.order.append(rid)
                number = self._number[rid] = len(self.order)
            numbers.append(f"\\[{number}\\]")
        return "".join(numbers)

    def links(self, limit: int) -> tuple[Link, ...]:
        return tuple(_reference_link(n, self.knowledge.references[rid]) for n, rid in enumerate(self.order[:limit], 1))


@lru_cache(maxsize=4096)
def _reference_link(number: int, ref: Reference) -> Link:
    flag = {"not_verified": " (not verified)", "partial": " (partly verified)"}.get(ref.verification, "")
    label = f"[{number}] {ref.short}: {ref.title}"
    room = 100 - len(flag)
    label = label if len(label) <= room else label[: room - 3] + "..."
    return Link(label=label + flag, url=ref.url)


# --- shared pieces ------------------------------------------------------------------------


def _source(knowledge: Knowledge) -> Source:
    system, code, display = knowledge.meta.topic
    label = f"{knowledge.meta.source_label}, version {knowledge.meta.version}"
    return Source(label=label, url=knowledge.source_url, topic=Coding(system, code, display))


def _override_reasons(knowledge: Knowledge) -> tuple[Coding, ...]:
    system = knowledge.meta.override_reason_system
    return tuple(Coding(system, code, display) for code, display in knowledge.meta.override_reasons)


@dataclass
class _Draft:
    kind: str
    summary: str
    detail: str
    indicator: str
    cites: _Citations
    suggestions: tuple[Suggestion, ...] = ()
    overrides: bool = True
    extra_links: tuple[Link, ...] = field(default=())


def _card(knowledge: Knowledge, d: _Draft, preview_url: str | None) -> Card:
    preview = (Link(label="Full option list, timeline and references (myositis-cds)", url=preview_url),) \
        if preview_url else ()
    return Card(
        kind=d.kind, uuid=_new_uuid(), summary=d.summary, indicator=d.indicator, source=_source(knowledge),
        detail=d.detail or None, suggestions=d.suggestions,
        selection_behavior="at-most-one" if d.suggestions else None,
        override_reasons=_override_reasons(knowledge) if d.overrides else (),
        links=preview + d.cites.links(knowledge.meta.max_reference_links),
    )


# --- record values in words -------------------------------------------------------------------


def _value(lab: LabResult) -> str:
    if lab.value is not None:
        return f"{lab.value:g}" + (f" {md(lab.unit)}" if lab.unit else "")
    return md(lab.value_text or "result without value")


def _when(lab: LabResult) -> str:
    return lab.date.isoformat() if lab.date else "undated"


def _measure_line(m: Measure, today: date) -> str:
    """'CK 2100 U/L on 2026-10-18 (upper limit 192), rising from 1850' in plain words."""
    text = f"{md(_short_label(m))} {_value(m.latest)} on {_when(m.latest)}"
    if m.latest.reference_high is not None:
        text += f" (upper limit {m.latest.reference_high:g})"
    if m.decline is not None and m.best is not None:
        text += f", down from {_value(m.best)} on {_when(m.best)}"
    elif m.trend and m.previous is not None:
        text += f", {m.trend} from {_value(m.previous)}"
    if not m.recent:
        text += " (not recent)"
    return text


_SHORT_LABELS = {"creatine_kinase": "CK", "aldolase": "Aldolase", "fvc": "FVC", "dlco": "DLCO"}


def _short_label(m: Measure) -> str:
    return _SHORT_LABELS.get(m.group, m.label)


def _activity_lines(a: Assessment, today: date) -> list[str]:
    act = a.activity
    out = [_measure_line(m, today) for m in (*act.enzymes, *act.lung)]
    if act.relapse:
        out.append(f"{md(act.relapse)} recorded as relapse")
    return out


def _weeks(state: ClassState) -> str:
    return f"{state.weeks} wk" if state.weeks is not None else "duration unknown"


def _agent_name(ingredient: str, knowledge: Knowledge) -> str:
    """The knowledge base's spelling of an ingredient (mappings lower-cases names: 'immunoglobulin g')."""
    return _agent_names(knowledge.options).get(ingredient.lower(), ingredient)


@lru_cache(maxsize=4)
def _agent_names(options: tuple[Option, ...]) -> dict[str, str]:
    return {a.name.lower(): a.name for o in options for a in o.agents}


def _tried_line(states: Iterable[ClassState], knowledge: Knowledge) -> str:
    """'methotrexate (56 wk), rituximab (course from 2025-04-20)': agents as the record names them."""
    out = []
    for s in states:
        agents = ", ".join(md(_agent_name(x, knowledge)) for x in s.trial.agents) or md(_lowerfirst(s.label))
        cls = knowledge.classes.get(s.therapy_class)
        if cls is not None and cls.course_based and s.episode_start is not None:
            out.append(f"{agents} (course from {s.episode_start.isoformat()})")
        else:
            out.append(f"{agents} ({_weeks(s)})")
    return ", ".join(out)


def _notes(facts: PatientFacts, a: Assessment) -> list[str]:
    out = []
    if facts.gaps:
        # Gap reasons are the service's own words (never record text), e.g. "the FHIR server timed out".
        gaps = "; ".join(f"{md(g.resource_type)} ({md(g.reason)})" for g in facts.gaps)
        out.append(f"Not available from the EHR: {gaps}"
                   + (" - 'not tried' means not in the available record" if a.medication_incomplete else "") + ".")
    if facts.unrecognised_medications:
        out.append(f"{len(facts.unrecognised_medications)} medication record(s) not recognised - check by hand.")
    if a.activity.unjudged:
        out.append("No reference range on " + ", ".join(md(x) for x in a.activity.unjudged) + ": activity not judged.")
    if a.age is None:
        out.append("Age not in the record; these options are for adults.")
    return out


def _situations(a: Assessment, knowledge: Knowledge, cites: _Citations) -> list[str]:
    """One line per situation the record shows (pathways.yaml text), most important first."""
    out = []

    def line(situation: str, lead: str = "") -> None:
        p = knowledge.pathway(situation)
        if p is not None:
            out.append(f"{lead}{p.text} {cites.cite(p.references)}".strip())

    if "imnm" in a.phenotypes:
        lead = f"**{md(_names(a.statins, 'and').capitalize())} active: stop the statin.** " if a.statins else ""
        line("imnm", lead)
    if "pregnancy" in a.conditions:
        line("pregnancy")
    if "cancer" in a.phenotypes:
        line("cancer")
    elif a.cancer_screen_first:
        line("new_dm")
    if "anti_mda5" in a.phenotypes and "ild" not in a.phenotypes:
        line("anti_mda5_without_ild")
    return out


# --- options --------------------------------------------------------------------------------


def _check_for(r: RankedOption, a: Assessment) -> str | None:
    classes = r.option.combination_of or (r.option.therapy_class,)
    for item in a.safety:
        if item.caution.kind == "screening" and item.caution.applies_to and set(item.caution.applies_to) & set(classes):
            return item.caution.title
    return None


def _option_view(r: RankedOption, a: Assessment, knowledge: Knowledge, cites: _Citations) -> dict[str, Any]:
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
        "orderable": r.orderable,
        "cites": cites.cite(dict.fromkeys([*o.references[:2], *(x for f in r.favoured for x in f.references[:1]),
                                           *(x for w in r.warnings for x in w.references[:1])])),
    }


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


def _suggestion(label: str, agents: Iterable[Agent], facts: PatientFacts) -> Suggestion:
    return Suggestion(label=label, uuid=_new_uuid(), actions=tuple(_draft_order(x, facts) for x in agents))


def _option_suggestions(a: Assessment, facts: PatientFacts) -> tuple[Suggestion, ...]:
    out = []
    for r in a.drafts:
        # A combination orders every agent (actions in one suggestion are applied together);
        # otherwise the first agent, the one the sources describe best.
        agents = r.option.agents if r.option.combination_of else r.option.agents[:1]
        verb = "Re-treat with" if r.retreat else "Add" if r.option.mode == "add_on" else "Start"
        names = " + ".join(x.name for x in agents)
        out.append(_suggestion(f"{verb} {names} (draft order{'s' if len(agents) > 1 else ''})", agents, facts))
    return tuple(out)


# --- cards ------------------------------------------------------------------------------------


def _main(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date) -> _Draft | None:
    cites = _Citations(knowledge)
    failed = [s for s in a.failed]
    gc = next((s for s in a.states if s.therapy_class == "glucocorticoid" and s.trial.ongoing), None)
    top = a.options[:3]
    context: dict[str, Any] = dict(
        disease=a.disease, activity=_activity_lines(a, today), active=a.activity.active,
        options=[_option_view(r, a, knowledge, cites) for r in top],
        more=max(0, len(a.options) - len(top)),
        top_names=[r.option.label for r in top],
        failed=_tried_line(failed, knowledge), failed_count=len(failed),
        failed_names=[", ".join(_agent_name(x, knowledge) for x in s.trial.agents) or _lowerfirst(s.label)
                      for s in failed],
        intolerant=_tried_line((s for s in a.states if s.outcome == INTOLERANT), knowledge),
        skin="skin_predominant" in a.phenotypes, incomplete=a.medication_incomplete,
        situations=_situations(a, knowledge, cites), notes=_notes(facts, a), drafts=bool(a.drafts),
        gc=gc and {"agents": ", ".join(md(x) for x in gc.trial.agents), "weeks": gc.weeks},
        in_progress=[{"label": s.label, "weeks": s.weeks, "window": s.window_weeks,
                      "start": s.episode_start.isoformat() if s.episode_start else "unknown"} for s in a.in_progress],
        judge=[{"label": s.label, "weeks": s.weeks} for s in a.states if s.outcome == "judge" and s.counts_as_second_agent],
        stopped_early=[{"label": s.label, "weeks": s.weeks, "intolerance": s.outcome == INTOLERANT}
                       for s in a.states if s.status == "stopped_early" and s.counts_as_second_agent],
        refer=None, not_favoured=[], reassess=[], removed=[o.label for o, _ in a.removed],
        recent_days=int(knowledge.threshold("activity-lab-recent-days")),
    )
    if a.refer:
        p = knowledge.pathway("many_failures")
        context["refer"] = p.text if p is not None else None
    if a.not_favoured:
        context["not_favoured"] = [f"{n.label.split(' (')[0]}: {n.card_line} {cites.cite(n.references[:2])}"
                                   for n in a.not_favoured]
    if a.reassess:
        context["reassess"] = [c.title for c in a.reassess]
        for c in a.reassess:
            cites.cite(c.references[:1])
    kind = {FIRST_LINE: "first-line", OPTIMISE: "optimise", IN_PROGRESS_ONLY: "in-progress", NEXT_LINE: "next-line",
            JUDGE_RESPONSE: "judge-response", NO_MEDICATION_DATA: "no-medication-data",
            LABS_UNAVAILABLE: "labs-unavailable"}.get(a.route)
    if kind is None:
        return None
    summary, detail = _render(kind, **context)
    warning = bool(a.statins and "imnm" in a.phenotypes) or "lung_function_falling" in a.phenotypes
    return _Draft(kind=kind, summary=summary, detail=detail, indicator="warning" if warning else "info", cites=cites,
                  suggestions=_option_suggestions(a, facts), overrides=kind not in ("no-medication-data", "labs-unavailable"))


def _urgent(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date) -> _Draft | None:
    if a.urgent is None:
        return None
    cites = _Citations(knowledge)
    p = knowledge.pathway("anti_mda5")
    lung = [m for m in a.activity.lung if m.group == "fvc"] + [m for m in a.activity.lung if m.group == "dlco"]
    fvc = next(iter(lung), None)
    summary, detail = _render(
        "urgent-anti-mda5",
        mda5=md(a.phenotypes["anti_mda5"]), ild=md(a.phenotypes["ild"]),
        lung=[_measure_line(m, today) for m in lung],
        fvc=fvc and {"from": f"{fvc.best.value:g}" if fvc.best and fvc.best.value is not None else None,
                     "to": f"{fvc.latest.value:g}" if fvc.latest.value is not None else None},
        falling=a.urgent.critical, text=p.text if p else "", cites=cites.cite(p.references) if p else "",
        agents=[x.name for x in a.urgent.agents], held_back=[md(x) for x in a.urgent.held_back],
        fallback=p.summary if p else "Anti-MDA5 with ILD",
    )
    suggestions = ()
    if a.urgent.agents:
        names = " + ".join(x.name for x in a.urgent.agents)
        suggestions = (_suggestion(f"Start combination: {names} with high-dose glucocorticoid (draft orders)",
                                   a.urgent.agents, facts),)
    return _Draft(kind="urgent-anti-mda5", summary=summary, detail=detail,
                  indicator="critical" if a.urgent.critical else "warning", cites=cites, suggestions=suggestions)


def _found_lines(facts: PatientFacts, item: SafetyItem) -> list[str]:
    out = []
    for token in item.found:
        kind, _, key = token.partition(":")
        if kind == "lab":
            lab = latest(facts, key)
            if lab is not None:
                out.append(f"{md(lab.label)} {_value(lab)} on {_when(lab)}")
        elif kind == "condition":
            out += [md(d.label) for d in facts.diagnoses if d.group == key]
        else:
            out.append(md(token))  # a risk-factor sentence built from knowledge text and numbers
    return out


def _safety(facts: PatientFacts, a: Assessment, knowledge: Knowledge) -> _Draft | None:
    if not a.safety:
        return None
    cites = _Citations(knowledge)
    items = [{"title": i.caution.title, "text": i.caution.text,
              # "(JAK inhibitor)" after "JAK inhibitor boxed warning" says nothing new
              "classes": ", ".join(c for c in i.classes if c.lower() not in i.caution.title.lower()),
              "cites": cites.cite(i.caution.references), "found": _found_lines(facts, i), "labs": bool(i.caution.labs),
              "kind": i.caution.kind, "open": i.open} for i in a.safety]
    drafted = [x.name for r in a.drafts for x in (r.option.agents if r.option.combination_of else r.option.agents[:1])]
    drafted += [x.name for x in (a.urgent.agents if a.urgent else ())]
    summary, detail = _render("safety", items=items, drafted=list(dict.fromkeys(drafted)),
                              screening=sum(1 for i in a.safety if i.caution.kind == "screening"),
                              monitoring=[i.caution.title for i in a.safety if i.caution.kind == "monitoring"])
    harm_open = any(i.open and i.caution.harm for i in a.safety)
    return _Draft(kind="safety", summary=summary, detail=detail, indicator="warning" if harm_open else "info",
                  cites=cites, overrides=True)


def _pathway_card(knowledge: Knowledge, situation: str, a: Assessment) -> _Draft | None:
    p = knowledge.pathway(situation)
    if p is None:
        return None
    cites = _Citations(knowledge)
    summary, detail = _render("pathway", summary=p.summary, text=p.text, cites=cites.cite(p.references),
                              also=a.disease if situation == "ibm" and a.disease != "myositis" else None)
    return _Draft(kind=f"pathway-{p.id}", summary=summary, detail=detail, indicator=p.indicator, cites=cites)


def render_cards(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date, preview_url: str | None) -> list[Card]:
    """Most important first: the urgent card, the main card, then the safety checks they need."""
    if a.route == NONE:
        return []
    if a.route in (IBM, JUVENILE):
        d = _pathway_card(knowledge, "ibm" if a.route == IBM else "juvenile", a)
        return [_card(knowledge, d, preview_url)] if d is not None else []
    drafts = [_urgent(facts, a, knowledge, today)]
    if a.urgent is None:
        drafts.append(_main(facts, a, knowledge, today))
    drafts.append(_safety(facts, a, knowledge))
    return [_card(knowledge, d, preview_url) for d in drafts if d is not None]




# --- the full view (preview page) ---------------------------------------------------------------

_OUTCOME_WORDS = {"failed": "failed after an adequate trial", "tried": "tried; response not in the record",
                  "judge": "ongoing past its window: judge the response", "in_progress": "in its adequate-trial window",
                  "inadequate": "stopped before an adequate trial", "intolerance": "stopped for intolerance",
                  "responded": "responded, now relapsing"}
_VERIFICATION_WORDS = {"not_verified": " (not verified)", "partial": " (partly verified)", "verified": ""}


class _FullCitations(_Citations):
    """Every reference numbered, none dropped: the full view has room for all of them."""

    def __init__(self, knowledge: Knowledge) -> None:
        super().__init__(knowledge)
        self.limit = len(knowledge.references)


def _reference_entry(ref: Reference) -> str:
    year = f" {ref.year}" if ref.year else ""
    where = f"PubMed {ref.pmid}" if ref.pmid else f"doi:{ref.doi}" if ref.doi else "web page" if ref.web else "PubMed search"
    return (f"{md(ref.authors)} {md(ref.title_sentence)} *{md(ref.journal)}*{year}. "
            f"[{where}]({ref.url}){_VERIFICATION_WORDS.get(ref.verification, '')}")


def _dates(s: ClassState) -> str:
    t = s.trial
    start = t.first_date.isoformat() if t.first_date else "start unknown"
    end = "ongoing" if t.ongoing else (t.last_date.isoformat() if t.last_date else "end unknown")
    return f"{start} to {end} ({_weeks(s)})"


def render_full_view(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date) -> str:
    """Markdown of everything the short cards leave out: the trial table, every ranked option with its
    rationale, what was left out and why, the checks before escalating and every reference."""
    cites = _FullCitations(knowledge)
    drafted = {r.option.id for r in a.drafts}
    options = []
    for r in a.options:
        o = r.option
        cls = knowledge.classes[o.therapy_class]
        options.append({
            "label": o.label, "mode": {"add_on": "add to current therapy", "replace": "instead of a failing agent",
                                       "start": "start"}[o.mode],
            "evidence": EVIDENCE_WORDS.get(o.study_type, o.study_type), "level": o.evidence_level.replace("_", " "),
            "rationale": o.rationale, "cites": cites.cite(o.references),
            "favoured": [f"{f.text} {cites.cite(f.references)}".strip() for f in r.favoured],
            "warnings": [f"{w.text} {cites.cite(w.references)}".strip() for w in r.warnings],
            "window": cls.adequate_trial.text if cls.adequate_trial else None,
            "orderable": r.orderable, "drafted": o.id in drafted,
        })
    _, detail = _render(
        "full-view",
        activity_line="; ".join(_activity_lines(a, today)) or "No CK, aldolase or lung function in the record.",
        states=[{"label": md(s.label), "agents": ", ".join(md(_agent_name(x, knowledge)) for x in s.trial.agents) or "-",
                 "dates": _dates(s), "outcome": _OUTCOME_WORDS.get(s.outcome, s.outcome) if s.counts_as_second_agent
                 else ("ongoing" if s.trial.ongoing else "stopped")} for s in a.states],
        stage="next line" if a.route == NEXT_LINE else "first line",
        options=options,
        removed=[f"{o.label}: {av.text} {cites.cite(av.references)}".strip() for o, av in a.removed],
        not_favoured=[f"{n.label}: {n.text} {cites.cite(n.references)}".strip() for n in a.not_favoured],
        reassess=[{"title": c.title[:1].upper() + c.title[1:], "text": c.text, "cites": cites.cite(c.references)}
                  for c in a.reassess],
        references=[_reference_entry(knowledge.references[rid]) for rid in cites.order],
    )
    return detail
