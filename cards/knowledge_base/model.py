"""The knowledge base's typed records: what cards/knowledge/*.yaml hold once validated.

Plain frozen dataclasses, no I/O; ``load.py`` builds them, ``reader.py`` reads the YAML fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

__all__ = [
    "KnowledgeError",
    "Knowledge",
    "Reference",
    "TherapyClass",
    "TrialWindow",
    "Agent",
    "Favour",
    "Avoid",
    "Option",
    "NotFavoured",
    "Caution",
    "LabOrder",
    "RiskFactor",
    "Pathway",
    "Meta",
    "Threshold",
]


class KnowledgeError(Exception):
    """A knowledge file is wrong; names the file and the entry so a reviewer can fix it."""

    def __init__(self, file: str, entry_id: str | None, problems: Iterable[str]) -> None:
        self.file = file
        self.entry_id = entry_id
        self.problems = tuple(problems)
        where = f"{file}: entry {entry_id!r}" if entry_id else file
        super().__init__(f"{where}: " + "; ".join(self.problems))


# --- data -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    id: str
    authors: str
    title: str
    journal: str
    year: int | None
    study_type: str
    verification: str  # verified | partial | not_verified
    url: str
    key_finding: str
    reviewed: date
    source: str
    pmid: str | None = None
    doi: str | None = None
    web: bool = False

    @property
    def short(self) -> str:
        """'Oddis CV 2013' style label for lists and links."""
        first = self.authors.split(",")[0].strip()
        return f"{first} {self.year}" if self.year else first

    @property
    def title_sentence(self) -> str:
        """The title closed by a full stop, unless it already ends in one (or in ? or !)."""
        return self.title if self.title.endswith((".", "?", "!")) else self.title + "."


@dataclass(frozen=True, slots=True)
class TrialWindow:
    weeks: int
    text: str
    tag: str
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TherapyClass:
    id: str
    label: str
    counts_as_second_agent: bool
    course_based: bool
    adequate_trial: TrialWindow | None
    reviewed: date
    source: str


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    rxnorm_in: str


@dataclass(frozen=True, slots=True)
class Favour:
    phenotype: str
    text: str
    tag: str
    references: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Avoid:
    condition: str
    effect: str  # remove | warn
    text: str
    tag: str
    references: tuple[str, ...]
    at_signing: str = "warning"  # the order-sign card's indicator: critical only for harm from the first dose


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    stage: str
    therapy_class: str
    label: str
    agents: tuple[Agent, ...]
    line: int
    rank: int
    evidence_level: str
    study_type: str
    rationale: str
    rationale_tag: str
    favoured_when: tuple[Favour, ...]
    only_when: tuple[str, ...]
    avoid_when: tuple[Avoid, ...]
    references: tuple[str, ...]
    reviewed: date
    source: str
    # Listed for everyone, but offered as a draft order only with one of these phenotypes
    # (e.g. IV cyclophosphamide: severe organ involvement). Empty: always offered.
    draft_order_when: tuple[str, ...] = ()
    # A combination of classes (e.g. methotrexate + azathioprine): offered when each was tried,
    # but never together; its draft orders create every agent.
    combination_of: tuple[str, ...] = ()
    # One line for the short card: what the option offers this patient, in plain words (<= 110 chars).
    card_line: str = ""
    # add_on: added to current therapy (e.g. IVIG with the current DMARD, as ProDERM tested);
    # replace: instead of a failing agent; start: first steroid-sparing agent.
    mode: str = "replace"
    # Course-based agents a prior responder may be re-treated with after a relapse.
    retreat_if_responded: bool = False
    # After several failed steroid-sparing agents (thresholds.yaml): ranked right after the untried line-2
    # agents and above a lone first-line DMARD (cards/rules.py).
    favoured_after_failures: bool = False


@dataclass(frozen=True, slots=True)
class NotFavoured:
    id: str
    therapy_class: str
    label: str
    text: str
    tag: str
    references: tuple[str, ...]
    reviewed: date
    source: str
    card_line: str = ""  # the few words the short card shows after the label


@dataclass(frozen=True, slots=True)
class RiskFactor:
    """One thing in the facts that makes a ``when: pjp_risk`` caution apply, and how the card names it.

    ``ongoing_class``: a course of one of ``classes`` is ongoing. ``phenotype``: one of
    ``phenotypes`` is recorded. ``daily_dose_above``: the current course of one of ``agents``
    (by RxNorm ingredient code) has a recorded daily dose above ``above_mg_per_day``.
    """

    id: str
    kind: str
    shown_as: str  # template; placeholders per vocab.RISK_FACTOR_FIELDS[kind]
    tag: str
    references: tuple[str, ...]
    reviewed: date
    source: str
    classes: tuple[str, ...] = ()
    phenotypes: tuple[str, ...] = ()
    agents: tuple[Agent, ...] = ()
    above_mg_per_day: float | None = None

    def describe(self, **values: str) -> str:
        return self.shown_as.format(**values)


@dataclass(frozen=True, slots=True)
class LabOrder:
    loinc: str
    display: str  # the LOINC long name as the terminology research records it


@dataclass(frozen=True, slots=True)
class Caution:
    id: str
    kind: str  # screening | reassess
    title: str
    text: str
    applies_to: tuple[str, ...]
    labs: tuple[str, ...]
    conditions: tuple[str, ...]
    when: str | None
    harm: bool
    tag: str
    references: tuple[str, ...]
    reviewed: date
    source: str
    # Only for "when: pjp_risk": what makes the caution apply, and the sentence (one {findings}
    # placeholder) that says which of them the record shows. cards/rules.py fills it in.
    risk_factors: tuple[RiskFactor, ...] = ()
    findings_text: str | None = None
    # Screening needed only before the first course of the class (e.g. TPMT before azathioprine):
    # silent when the record shows the class was already taken for a whole adequate trial.
    first_course_only: bool = False
    # The lab tests an order-time card may draft when the check has no result (LOINC, verified codes).
    lab_orders: tuple[LabOrder, ...] = ()

    def findings_sentence(self, findings: Iterable[str]) -> str:
        return (self.findings_text or "").format(findings="; ".join(findings))

    def with_sentence_before(self, sentence: str) -> Caution:
        """A copy whose text starts with ``sentence`` (the record's findings), for an Assessment."""
        return dataclasses.replace(self, text=f"{sentence} {self.text}")

    def with_sentence_after(self, sentence: str) -> Caution:
        return dataclasses.replace(self, text=f"{self.text} {sentence}")


@dataclass(frozen=True, slots=True)
class Pathway:
    id: str
    situation: str
    indicator: str
    summary: str
    text: str
    replaces_escalation: bool
    tag: str
    references: tuple[str, ...]
    reviewed: date
    source: str


@dataclass(frozen=True, slots=True)
class Meta:
    source_label: str
    main_reference: str
    topic: tuple[str, str, str]  # system, code, display
    override_reason_system: str
    override_reasons: tuple[tuple[str, str], ...]  # (code, display): the patient-view cards offer these
    order_override_reasons: tuple[tuple[str, str], ...]  # (code, display): the order cards offer these
    standing_override_reasons: tuple[str, ...]  # codes that hold a card for the repeat period from the first time
    max_reference_links: int
    version: str
    reviewed: date
    source: str

    @property
    def all_override_reasons(self) -> tuple[tuple[str, str], ...]:
        """Every reason any card offers, each code once: what feedback may name."""
        return tuple(
            {code: (code, display) for code, display in (*self.override_reasons, *self.order_override_reasons)}.values()
        )


@dataclass(frozen=True, slots=True)
class Threshold:
    """One number a rule compares the record with, with where it comes from."""

    id: str
    value: float
    unit: str
    text: str  # what the number means, for the knowledge review table
    tag: str
    references: tuple[str, ...]
    reviewed: date
    source: str


@dataclass(frozen=True, slots=True)
class Knowledge:
    references: dict[str, Reference]
    classes: dict[str, TherapyClass]
    options: tuple[Option, ...]
    not_favoured: tuple[NotFavoured, ...]
    cautions: dict[str, Caution]
    pathways: tuple[Pathway, ...]
    meta: Meta
    directory: str
    thresholds: dict[str, Threshold] = dataclasses.field(default_factory=dict)

    def threshold(self, threshold_id: str) -> float:
        return self.thresholds[threshold_id].value

    @property
    def source_url(self) -> str:
        return self.references[self.meta.main_reference].url

    def options_for(self, stage: str) -> tuple[Option, ...]:
        return tuple(o for o in self.options if o.stage == stage)

    def pathway(self, situation: str) -> Pathway | None:
        for p in self.pathways:
            if p.situation == situation:
                return p
        return None
