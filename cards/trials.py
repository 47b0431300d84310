"""Per-class trial state from the medication timeline (algorithm.md §3), and what it means now.

The state is what the timeline says (inside the adequate-trial window, ongoing past it, stopped
after it, stopped before it); the *outcome* adds what the labs say (cards/activity.py):

- in_progress: inside its window: not failed, too early to switch;
- intolerance: stopped for intolerance (statusReason): not shown to fail;
- inadequate: stopped before its window for no stated intolerance: not an adequate trial;
- responded: a course-based drug after which CK/aldolase came back within range and stayed there
  (a prior responder: re-treatment is routine after a relapse);
- failed: an adequate trial with activity during it or now;
- judge: ongoing past its window with no activity in the record: judge the response, not failed;
- tried: stopped after an adequate trial, response not in the record;
- stopped_pregnancy: stopped for (planned) pregnancy: neither failed nor intolerant.

Only ``failed`` (and ``tried``, which cannot be told apart from it) keep a class out of the options.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

from mappings.model import PatientFacts, TrialHistory
from mappings.stop_reason import INTOLERANCE, PREGNANCY

from .activity import Activity, enzyme_results, is_normal
from .knowledge_base import Knowledge

__all__ = [
    "ClassState",
    "IN_PROGRESS",
    "ONGOING",
    "STOPPED",
    "STOPPED_EARLY",
    "trial_states",
    "FAILED",
    "TRIED",
    "JUDGE",
    "RESPONDED",
    "INADEQUATE",
    "INTOLERANT",
    "STOPPED_FOR_PREGNANCY",
    "EXCLUDING",
]

IN_PROGRESS = "in_progress"  # inside the adequate-trial window
ONGOING = "ongoing"  # still taken, past the window (or class has no window)
STOPPED = "stopped"  # stopped after at least the window, or no window known
STOPPED_EARLY = "stopped_early"  # stopped before the window ran out

FAILED = "failed"
TRIED = "tried"
JUDGE = "judge"
RESPONDED = "responded"
INADEQUATE = "inadequate"
INTOLERANT = "intolerance"
STOPPED_FOR_PREGNANCY = "stopped_pregnancy"
EXCLUDING = frozenset({FAILED, TRIED, INTOLERANT})  # outcomes that keep the class out of the options


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
    outcome: str = TRIED
    stop_reason: str | None = None  # "intolerance" | "inefficacy" | None, from the latest stopped record

    @property
    def in_progress(self) -> bool:
        return self.status == IN_PROGRESS

    @property
    def adequate(self) -> bool:
        """Given for its whole window (or course-based and past it)."""
        return self.status in (ONGOING, STOPPED)


def _episode_start(trial: TrialHistory, window_weeks: int | None) -> date | None:
    """Start of the latest episode: a gap longer than the whole window starts a new one,
    so a rituximab re-treatment years later gets its own window."""
    dates = sorted(set(trial.exposure_dates) | {d.start for d in trial.drugs if d.start is not None})
    if not dates:
        return trial.first_date
    start = dates[0]
    if window_weeks:
        for previous, current in pairwise(dates):
            if (current - previous).days > window_weeks * 7:
                start = current
    return start


def _status(
    trial: TrialHistory, window: int | None, course_based: bool, start: date | None, today: date
) -> tuple[str, int | None]:
    since_start = (today - start).days // 7 if start is not None and start <= today else None
    if start is not None and trial.last_date is not None and trial.last_date >= start and not trial.ongoing:
        duration = (trial.last_date - start).days // 7
    else:
        duration = None
    if window is not None and since_start is not None and since_start < window and (trial.ongoing or course_based):
        # Course-based drugs (rituximab, IVIG, IV CYC) act for months after the last infusion:
        # a "completed" course 8 weeks ago is still being judged.
        status = IN_PROGRESS
    elif trial.ongoing:
        status = ONGOING
    elif window is not None and duration is not None and duration < window and not course_based:
        status = STOPPED_EARLY
    else:
        status = STOPPED
    # Running or still being judged: weeks so far; stopped: how long it was used.
    return status, since_start if status in (IN_PROGRESS, ONGOING) else duration


def _stop_reason(trial: TrialHistory) -> str | None:
    stopped = [d for d in trial.drugs if not d.ongoing]
    latest = max(stopped, key=lambda d: d.end or d.start or date.min, default=None)
    return latest.stop_reason if latest is not None else None


def _responded(facts: PatientFacts, start: date | None, activity: Activity, knowledge: Knowledge) -> bool:
    """CK/aldolase within range from some weeks after the course began, for months, before today's rise."""
    if start is None or not activity.active:
        return False
    delay = timedelta(weeks=knowledge.threshold("response-delay-weeks"))
    after = [lab for lab in enzyme_results(facts) if lab.date is not None and lab.date >= start + delay]
    normal = [lab for lab in after if is_normal(lab)]
    if not normal:
        return False
    first_normal = normal[0].date
    raised_since = [
        lab.date
        for lab in after
        if is_normal(lab) is False and lab.date is not None and first_normal is not None and lab.date > first_normal
    ]
    if first_normal is None or not raised_since:
        return False
    return (min(raised_since) - first_normal).days >= knowledge.threshold("responder-normal-days")


def _outcome(status: str, stop_reason: str | None, course_based: bool, responded: bool, active: bool) -> str:
    if status == IN_PROGRESS:
        return IN_PROGRESS
    if stop_reason == PREGNANCY and not status == ONGOING:
        return STOPPED_FOR_PREGNANCY
    if status == STOPPED_EARLY:
        return INTOLERANT if stop_reason == INTOLERANCE else INADEQUATE
    if stop_reason == INTOLERANCE and status == STOPPED:
        return INTOLERANT
    if course_based and responded:
        return RESPONDED
    if status == ONGOING:
        return FAILED if active else JUDGE
    return FAILED if active else TRIED


def _state(
    trial: TrialHistory, facts: PatientFacts, knowledge: Knowledge, activity: Activity, today: date
) -> ClassState:
    cls = knowledge.classes.get(trial.therapy_class)
    window = cls.adequate_trial.weeks if cls is not None and cls.adequate_trial is not None else None
    course_based = cls.course_based if cls is not None else False
    start = _episode_start(trial, window)
    status, weeks = _status(trial, window, course_based, start, today)
    reason = _stop_reason(trial)
    responded = course_based and _responded(facts, start, activity, knowledge)
    return ClassState(
        therapy_class=trial.therapy_class,
        label=cls.label if cls is not None else trial.therapy_class,
        status=status,
        trial=trial,
        episode_start=start,
        weeks=weeks,
        window_weeks=window,
        counts_as_second_agent=cls.counts_as_second_agent
        if cls is not None
        else False,  # an unknown class never makes anyone "refractory"
        outcome=_outcome(status, reason, course_based, responded, activity.active),
        stop_reason=reason,
    )


def trial_states(facts: PatientFacts, knowledge: Knowledge, activity: Activity, today: date) -> tuple[ClassState, ...]:
    """One state per class in the record, in the record's order (first use, then class id)."""
    return tuple(_state(t, facts, knowledge, activity, today) for t in facts.trials)
