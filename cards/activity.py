"""Is the disease active now? What the record's labs and condition statuses say, and nothing more.

Activity gates escalation (issue 14): a next-line list with draft orders is offered only when the
record shows active disease. Evidence counted, each against a number in thresholds.yaml:

- CK or aldolase above its reference range (``Observation.referenceRange``, else an H/HH flag;
  no range and no flag: not judged, and the card says so) in a recent result, and not clearly
  falling from the previous one;
- FVC or DLCO (% predicted) fallen by the cited margin within the window;
- a myositis Condition recorded as relapse or recurrence.

The clinician judges activity; this module only reports what the record shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from mappings.model import LabResult, PatientFacts

from . import vocab
from .knowledge_base import Knowledge

__all__ = ["Measure", "Activity", "assess_activity", "enzyme_results", "is_normal"]

ENZYMES = ("creatine_kinase", "aldolase")
LUNG = ("fvc", "dlco")
_HIGH_FLAGS = frozenset({"H", "HH", "HU", "A", "AA"})
_NORMAL_FLAGS = frozenset({"N", "L", "LL"})


@dataclass(frozen=True, slots=True)
class Measure:
    """The latest result of one lab with the one before it, as the card shows it."""

    group: str
    label: str
    latest: LabResult
    previous: LabResult | None
    above_range: bool | None  # None: no reference range or flag to judge by
    trend: str | None  # rising | falling | stable | None (no earlier value)
    recent: bool
    decline: float | None = None  # lung only: fall in % predicted from the best value in the window
    best: LabResult | None = None  # lung only: that best value


@dataclass(frozen=True, slots=True)
class Activity:
    enzymes: tuple[Measure, ...]
    lung: tuple[Measure, ...]
    raised_enzyme: Measure | None  # recent, above range and not clearly falling
    lung_decline: Measure | None  # FVC or DLCO fallen by the cited margin
    relapse: str | None  # label of a myositis condition recorded as relapse / recurrence
    unjudged: tuple[str, ...]  # labels of recent enzymes with no range or flag to judge them by

    @property
    def active(self) -> bool:
        return self.raised_enzyme is not None or self.lung_decline is not None or self.relapse is not None

    @property
    def measured(self) -> bool:
        """A recent CK or aldolase that could be judged."""
        return any(m.recent and m.above_range is not None for m in self.enzymes)

    @property
    def enzymes_normal(self) -> bool:
        """Every recent muscle enzyme is within range (at least one)."""
        recent = [m for m in self.enzymes if m.recent and m.above_range is not None]
        return bool(recent) and not any(m.above_range for m in recent)


def is_normal(lab: LabResult) -> bool | None:
    """Within range (True), above it (False), or cannot be told (None)."""
    if lab.value is not None and lab.reference_high is not None:
        return lab.value <= lab.reference_high
    flags = {c.upper() for c in lab.interpretation}
    if flags & _HIGH_FLAGS:
        return False
    if flags & _NORMAL_FLAGS:
        return True
    return None


def enzyme_results(facts: PatientFacts) -> list[LabResult]:
    """Dated CK and aldolase results, oldest first."""
    return sorted(
        (lab for g in ENZYMES for lab in facts.labs_in(g) if lab.date is not None), key=lambda lab: lab.date or date.min
    )


def _trend(latest: LabResult, previous: LabResult | None, fraction: float) -> str | None:
    if previous is None or latest.value is None or previous.value is None or previous.value <= 0:
        return None
    if latest.value < previous.value * (1 - fraction):
        return "falling"
    if latest.value > previous.value * (1 + fraction):
        return "rising"
    return "stable"


def _enzyme(facts: PatientFacts, group: str, knowledge: Knowledge, today: date) -> Measure | None:
    labs = [lab for lab in facts.labs_in(group) if lab.date is not None]
    if not labs:
        return None
    labs.sort(key=lambda lab: lab.date or date.min)
    latest = labs[-1]
    previous = next((lab for lab in reversed(labs[:-1]) if lab.value is not None), None)
    normal = is_normal(latest)
    recent = latest.date is not None and (today - latest.date).days <= knowledge.threshold("activity-lab-recent-days")
    return Measure(
        group=group,
        label=latest.label,
        latest=latest,
        previous=previous,
        above_range=None if normal is None else not normal,
        trend=_trend(latest, previous, knowledge.threshold("enzyme-clearly-falling-fraction")),
        recent=recent,
    )


def _lung(facts: PatientFacts, group: str, knowledge: Knowledge, today: date) -> Measure | None:
    labs = sorted(
        (lab for lab in facts.labs_in(group) if lab.date is not None and lab.value is not None),
        key=lambda lab: lab.date or date.min,
    )
    # The cited margins are in % predicted: an absolute DLCO (mL/min/mmHg) is shown, never judged by them.
    percent = [lab for lab in labs if (lab.unit or "").strip() == "%"]
    if not labs:
        return None
    latest = labs[-1]
    assert latest.date is not None and latest.value is not None  # filtered above
    window = timedelta(days=knowledge.threshold("lung-decline-window-days"))
    earlier = (
        [lab for lab in percent[:-1] if lab.date is not None and latest.date - lab.date <= window]
        if percent and percent[-1] is latest
        else []
    )
    best = max(earlier, key=lambda lab: lab.value or 0.0, default=None)
    decline = (best.value - latest.value) if best is not None and best.value is not None else None
    previous = labs[-2] if len(labs) > 1 else None
    recent = (today - latest.date).days <= knowledge.threshold("activity-lab-recent-days")
    return Measure(
        group=group,
        label=latest.label,
        latest=latest,
        previous=previous,
        above_range=None,
        trend=_trend(latest, previous, 0.0),
        recent=recent,
        decline=decline,
        best=best,
    )


def assess_activity(facts: PatientFacts, knowledge: Knowledge, today: date) -> Activity:
    enzymes = tuple(m for g in ENZYMES if (m := _enzyme(facts, g, knowledge, today)) is not None)
    margins = {"fvc": knowledge.threshold("fvc-decline-points"), "dlco": knowledge.threshold("dlco-decline-points")}
    lung = tuple(m for g in LUNG if (m := _lung(facts, g, knowledge, today)) is not None)
    raised = next((m for m in enzymes if m.recent and m.above_range and m.trend != "falling"), None)
    decline = next((m for m in lung if m.recent and m.decline is not None and m.decline >= margins[m.group]), None)
    relapse = next(
        (
            d.label
            for d in facts.diagnoses
            if d.group in vocab.MYOSITIS_GROUPS and d.clinical_status in ("relapse", "recurrence")
        ),
        None,
    )
    unjudged = tuple(m.label for m in enzymes if m.recent and m.above_range is None)
    return Activity(
        enzymes=enzymes, lung=lung, raised_enzyme=raised, lung_decline=decline, relapse=relapse, unjudged=unjudged
    )
