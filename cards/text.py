"""Words for cards: Markdown escaping, the Jinja templates, citation numbers, and record values in
plain words. Shared by the short cards (render.py) and the full view (full_view.py); knowledge and
record text pass through here, and record-supplied text is escaped (md) before a template sees it.
"""

from __future__ import annotations

import os
import random
import re
import uuid
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from mappings.model import LabResult

from .activity import Measure
from .knowledge_base import Knowledge, Option, Reference
from .models import Link
from .rules import Assessment
from .trials import ClassState

__all__ = [
    "TEMPLATE_DIRECTORY",
    "EVIDENCE_WORDS",
    "Citations",
    "md",
    "new_uuid",
    "render_template",
    "lower_first",
    "names_list",
    "value_text",
    "when_text",
    "measure_line",
    "activity_lines",
    "weeks_text",
    "agent_name",
    "tried_line",
]

TEMPLATE_DIRECTORY = Path(__file__).resolve().parent / "templates"

# Study designs in the words a clinician uses (the knowledge tags never reach a card).
EVIDENCE_WORDS = {
    "RCT": "randomised trial",
    "open-label": "open-label study",
    "cohort": "cohort study",
    "case series": "case series",
    "case report": "case report",
    "guideline": "guideline",
    "expert opinion": "expert opinion",
}

_BLANK_LINES = re.compile(r"\n{3,}")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|])")

# Card and suggestion uuids need uniqueness, not secrecy (feedback that quotes them is authenticated):
# a per-process generator seeded from the OS avoids a getrandom() system call per uuid.
_UUID_RANDOM = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _UUID_RANDOM.seed(os.urandom(32)))  # forked workers must not repeat uuids


def new_uuid() -> str:
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


class _Environment(jinja2.Environment):
    """Jinja as is, except that ``x.name`` on a dict reads the key first.

    The cards' views are dicts; Jinja tries the attribute first and reads the key only after an
    AttributeError, about a microsecond each, some hundred times per call. The card templates call no
    dict methods, and a name that is no key still falls back to Jinja's own lookup."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    # Autoescape off: the output is Markdown, not HTML; record text is escaped by md() before it gets here.
    env = _Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # The templates ship with the code and change only with a new release: no stat() of each file per card.
        auto_reload=False,
    )
    env.filters["fit"] = _fit
    env.filters["names"] = names_list
    env.filters["lowerfirst"] = lower_first
    return env


def lower_first(text: str) -> str:
    """'Methotrexate' -> 'methotrexate' mid-sentence; 'TPMT / NUDT15', 'IgA level', 'IV ...' stay as they are."""
    first = text.split(" ", 1)[0]
    return text[:1].lower() + text[1:] if len(first) > 1 and first[1:].islower() else text


def names_list(items: Iterable[str], conjunction: str = "or") -> str:
    """'a', 'a or b', 'a, b or c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def render_template(kind: str, **context: Any) -> tuple[str, str]:
    """(summary, detail) from the kind's template."""
    template = _environment(str(TEMPLATE_DIRECTORY)).get_template(f"{kind}.md.j2")
    ctx = template.new_context(context)
    summary = "".join(template.blocks["summary"](ctx))
    detail = "".join(template.blocks["detail"](ctx))
    detail = _BLANK_LINES.sub("\n\n", detail).strip()
    return _fit(summary), detail


# --- citations ----------------------------------------------------------------------------


class Citations:
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


# --- record values in words -------------------------------------------------------------------


def value_text(lab: LabResult) -> str:
    if lab.value is not None:
        if lab.unit and lab.unit.strip() == "%":
            return f"{lab.value:g}%"
        return f"{lab.value:g}" + (f" {md(lab.unit)}" if lab.unit else "")
    return md(lab.value_text or "result without value")


def when_text(lab: LabResult) -> str:
    return lab.date.isoformat() if lab.date else "undated"


def measure_line(m: Measure, today: date) -> str:
    """'CK 2100 U/L on 2026-10-18 (ULN 192), rising from 2400 U/L on 2026-08-03' in plain words."""
    text = f"{md(_short_label(m))} {value_text(m.latest)} on {when_text(m.latest)}"
    if m.latest.reference_high is not None:
        text += f" (ULN {m.latest.reference_high:g})"
    if m.decline is not None and m.best is not None:
        text += f", down from {value_text(m.best)} on {when_text(m.best)}"
    elif m.trend and m.previous is not None:
        text += f", {m.trend} from {value_text(m.previous)} on {when_text(m.previous)}"
    if not m.recent:
        text += " (not recent)"
    return text


_SHORT_LABELS = {"creatine_kinase": "CK", "aldolase": "Aldolase", "fvc": "FVC", "dlco": "DLCO"}


def _short_label(m: Measure) -> str:
    return _SHORT_LABELS.get(m.group, m.label)


def activity_lines(a: Assessment, today: date) -> list[str]:
    act = a.activity
    out = [measure_line(m, today) for m in (*act.enzymes, *act.lung)]
    if act.relapse:
        out.append(f"{md(act.relapse)} recorded as relapse")
    return out


def weeks_text(state: ClassState) -> str:
    return f"{state.weeks} wk" if state.weeks is not None else "duration unknown"


def agent_name(ingredient: str, knowledge: Knowledge) -> str:
    """The knowledge base's spelling of an ingredient (mappings lower-cases names: 'immunoglobulin g')."""
    return _agent_names(knowledge.options).get(ingredient.lower(), ingredient)


# options tuple's id -> (that tuple, its names). Keyed by identity, not by value: an lru_cache would hash the
# whole tuple of nested Options on every call (measured: 60 us a call, 11 calls per reference-patient card).
_NAMES: dict[int, tuple[tuple[Option, ...], dict[str, str]]] = {}


def _agent_names(options: tuple[Option, ...]) -> dict[str, str]:
    """Ingredient -> how a card names it: the label of a single-agent option ('IV immune globulin' for the
    RxNorm ingredient 'immunoglobulin G'), else the knowledge base's spelling of the ingredient."""
    hit = _NAMES.get(id(options))
    if hit is not None and hit[0] is options:
        return hit[1]
    names = {a.name.lower(): a.name for o in options for a in o.agents}
    names.update(
        {o.agents[0].name.lower(): lower_first(o.label) for o in options if len(o.agents) == 1 and not o.combination_of}
    )
    if len(_NAMES) > 16:  # tests load many knowledge bases; a process serves one
        _NAMES.clear()
    _NAMES[id(options)] = (options, names)  # holds the tuple: its id cannot be reused while cached
    return names


def tried_line(states: Iterable[ClassState], knowledge: Knowledge) -> str:
    """'methotrexate (56 wk), rituximab (course from 2025-04-20)': agents as the record names them."""
    out = []
    for s in states:
        agents = ", ".join(md(agent_name(x, knowledge)) for x in s.trial.agents) or md(lower_first(s.label))
        cls = knowledge.classes.get(s.therapy_class)
        if cls is not None and cls.course_based and s.episode_start is not None:
            out.append(f"{agents} (course from {s.episode_start.isoformat()})")
        else:
            out.append(f"{agents} ({weeks_text(s)})")
    return ", ".join(out)
