"""The full assessment behind the short cards, as Markdown for the preview page: the trial table,
every ranked option with its rationale, what was left out and why, the checks before escalating, and
every reference (none dropped for want of room)."""

from __future__ import annotations

from datetime import date

from mappings.model import PatientFacts

from .knowledge_base import Knowledge, Reference
from .rules import NEXT_LINE, Assessment
from .text import EVIDENCE_WORDS, Citations, activity_lines, agent_name, md, render_template, weeks_text
from .trials import ClassState

__all__ = ["render_full_view"]

_OUTCOME_WORDS = {
    "failed": "failed after an adequate trial",
    "tried": "tried; response not in the record",
    "judge": "ongoing past its window: judge the response",
    "in_progress": "in its adequate-trial window",
    "inadequate": "stopped before an adequate trial",
    "intolerance": "stopped for intolerance",
    "responded": "responded, now relapsing",
    "stopped_pregnancy": "stopped for pregnancy",
}
_VERIFICATION_WORDS = {"not_verified": " (not verified)", "partial": " (partly verified)", "verified": ""}


class _FullCitations(Citations):
    """Every reference numbered, none dropped: the full view has room for all of them."""

    def __init__(self, knowledge: Knowledge) -> None:
        super().__init__(knowledge)
        self.limit = len(knowledge.references)


def _reference_entry(ref: Reference) -> str:
    year = f" {ref.year}" if ref.year else ""
    where = (
        f"PubMed {ref.pmid}"
        if ref.pmid
        else f"doi:{ref.doi}"
        if ref.doi
        else "web page"
        if ref.web
        else "PubMed search"
    )
    return (
        f"{md(ref.authors)} {md(ref.title_sentence)} *{md(ref.journal)}*{year}. "
        f"[{where}]({ref.url}){_VERIFICATION_WORDS.get(ref.verification, '')}"
    )


def _dates(s: ClassState) -> str:
    t = s.trial
    start = t.first_date.isoformat() if t.first_date else "start unknown"
    end = "ongoing" if t.ongoing else (t.last_date.isoformat() if t.last_date else "end unknown")
    return f"{start} to {end} ({weeks_text(s)})"


def render_full_view(facts: PatientFacts, a: Assessment, knowledge: Knowledge, today: date) -> str:
    """Markdown of everything the short cards leave out: the trial table, every ranked option with its
    rationale, what was left out and why, the checks before escalating and every reference."""
    cites = _FullCitations(knowledge)
    drafted = {r.option.id for r in a.drafts}
    options = []
    for r in a.options:
        o = r.option
        cls = knowledge.classes[o.therapy_class]
        options.append(
            {
                "label": o.label,
                "mode": {"add_on": "add to current therapy", "replace": "instead of a failing agent", "start": "start"}[
                    o.mode
                ],
                "evidence": EVIDENCE_WORDS.get(o.study_type, o.study_type),
                "level": o.evidence_level.replace("_", " "),
                "rationale": o.rationale,
                "cites": cites.cite(o.references),
                "favoured": [f"{f.text} {cites.cite(f.references)}".strip() for f in r.favoured],
                "warnings": [f"{w.text} {cites.cite(w.references)}".strip() for w in r.warnings],
                "window": cls.adequate_trial.text if cls.adequate_trial else None,
                "orderable": r.orderable,
                "drafted": o.id in drafted,
            }
        )
    _, detail = render_template(
        "full-view",
        activity_line="; ".join(activity_lines(a, today)) or "No CK, aldolase or lung function in the record.",
        states=[
            {
                "label": md(s.label),
                "agents": ", ".join(md(agent_name(x, knowledge)) for x in s.trial.agents) or "-",
                "dates": _dates(s),
                "outcome": _OUTCOME_WORDS.get(s.outcome, s.outcome)
                if s.counts_as_second_agent
                else ("ongoing" if s.trial.ongoing else "stopped"),
            }
            for s in a.states
        ],
        stage="next line" if a.route == NEXT_LINE else "first line",
        options=options,
        removed=[f"{o.label}: {av.text} {cites.cite(av.references)}".strip() for o, av in a.removed],
        not_favoured=[f"{n.label}: {n.text} {cites.cite(n.references)}".strip() for n in a.not_favoured],
        reassess=[
            {"title": c.title[:1].upper() + c.title[1:], "text": c.text, "cites": cites.cite(c.references)}
            for c in a.reassess
        ],
        references=[_reference_entry(knowledge.references[rid]) for rid in cites.order],
    )
    return detail
