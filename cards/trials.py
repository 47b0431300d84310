"""Per-class trial state from the medication timeline (algorithm.md §3).

A class inside its adequate-trial window is *in progress*: not failed, not to be switched
away from yet. Everything else that was tried is "tried" and is never re-suggested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mappings.model import PatientFacts, TrialHistory

from .knowledge_base import Knowledge

__all__ = ["ClassState", "IN_PROGRESS", "ONGOING", "STOPPED", "STOPPED_EARLY", "trial_states"]

IN_PROGRESS = "in_progress"  # inside the adequate-trial window
ONGOING = "ongoing"  # still taken, past the window (or class has no window)
STOPPED = "stopped"  # stopped after at least the window, or no window known
STOPPED_EARLY = "stopped_early"  # stopped before the window ran out (intolerance? not adequate)


@dataclass(frozen=True, slots=True)
class ClassState:
    therapy_class: str
    label: str
    status: str
    trial: TrialHistory
    episode_start: date | None  # start of the latest course/episode
    weeks: int | None  # weeks from episode start to today (running) or to last use (stopped)
    window_weeks: int | None
    counts_as_second_agent: bool

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS


def _episode_start(trial: TrialHistory, window_weeks: int | None) -> date | None:
    """Start of the latest episode: a gap longer than the whole window starts a new one,
    so a rituximab re-treatment years later gets its own window."""
    dates = sorted(set(trial.exposure_dates) | {d.start for d in trial.drugs if d.start is not None})
    if not dates:
        return trial.first_date
    start = dates[0]
    if window_weeks:
        for previous, current in zip(dates, dates[1:]):
            if (current - previous).days > window_weeks * 7:
                start = current
    return start


def _state(trial: TrialHistory, knowledge: Knowledge, today: date) -> ClassState:
    cls = knowledge.classes.get(trial.therapy_class)
    window = cls.adequate_trial.weeks if cls is not None and cls.adequate_trial is not None else None
    start = _episode_start(trial, window)
    course_based = cls.course_based if cls is not None else False
    running = trial.ongoing
    if start is not None and start <= today:
        since_start = (today - start).days // 7
    else:
        since_start = None
    if start is not None and trial.last_date is not None and trial.last_date >= start and not running:
        duration = (trial.last_date - start).days // 7
    else:
        duration = None

    if window is not None and since_start is not None and since_start < window and (running or course_based):
        # Course-based drugs (rituximab, IVIG, IV CYC) act for months after the last infusion:
        # a "completed" course 8 weeks ago is still being judged.
        status = IN_PROGRESS
    elif running:
        status = ONGOING
    elif window is not None and duration is not None and duration < window and not course_based:
        status = STOPPED_EARLY
    else:
        status = STOPPED
    # Running or still being judged: weeks so far; stopped: how long it was used.
    weeks = since_start if status in (IN_PROGRESS, ONGOING) else duration
    return ClassState(
        therapy_class=trial.therapy_class,
        label=cls.label if cls is not None else trial.therapy_class,
        status=status,
        trial=trial,
        episode_start=start,
        weeks=weeks,
        window_weeks=window,
        counts_as_second_agent=cls.counts_as_second_agent if cls is not None else True,
    )


def trial_states(facts: PatientFacts, knowledge: Knowledge, today: date) -> tuple[ClassState, ...]:
    """One state per class in the record, in the record's order (first use, then class id)."""
    return tuple(_state(t, knowledge, today) for t in facts.trials)
