"""Who gets which card: pure functions from PatientFacts to an Assessment.

One module: the five rules below decide one route together (each can pre-empt the others), so
they are read in one place, top to bottom, in the order they apply.

No wording here; cards/render.py fills the templates from the Assessment. The rules (issue 14):

1. Activity gates escalation: a next-line list with draft orders only when the record shows
   active disease (cards/activity.py) after an adequate trial of a steroid-sparing agent.
2. A trial means what its timeline and the labs say (cards/trials.py): ongoing past its window
   with no activity is "judge the response"; stopped early is "not an adequate trial"; stopped
   for intolerance is intolerance. Only a failed class is kept out of the options.
3. A prior responder to a course-based drug (rituximab, IVIG) may be re-treated; add-on options
   say so.
4. The phenotype leads: anti-MDA5 with ILD gets the urgent combination card and no slow agents;
   skin-predominant disease puts skin-directed options first; IMNM names an active statin; after
   many failures, referral and third-line agents rank above a lone first-line DMARD.
5. Cautions apply to whom they concern: pregnancy only for people who could be pregnant; active
   cancer removes JAK inhibitors and the "re-screen" advice; nothing is drafted on the strength
   of the AI-generated seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from itertools import pairwise

from mappings.model import PatientFacts

from . import vocab
from .activity import Activity, assess_activity
from .knowledge_base import Agent, Avoid, Caution, Favour, Knowledge, NotFavoured, Option
from .phenotype import conditions, phenotypes
from .safety import SafetyItem, safety_items
from .trials import EXCLUDING, FAILED, IN_PROGRESS, INADEQUATE, INTOLERANT, JUDGE, RESPONDED, ClassState, trial_states

__all__ = ["RankedOption", "Urgent", "Assessment", "assess", "ADULT_AGE"]

ADULT_AGE = 18

# Routes: which main card the patient gets.
NONE = "none"  # no myositis: no cards at all
IBM = "ibm"
JUVENILE = "juvenile"
NO_MEDICATION_DATA = "no_medication_data"
FIRST_LINE = "first_line"  # no steroid-sparing agent yet
OPTIMISE = "optimise"  # active, but no steroid-sparing agent had an adequate trial
IN_PROGRESS_ONLY = "in_progress_only"  # active while a trial runs its window: judge it first
NEXT_LINE = "next_line"  # active after an adequate trial: the escalation list
JUDGE_RESPONSE = "judge_response"  # past the window, but no recent CK/aldolase to judge it by
LABS_UNAVAILABLE = "labs_unavailable"  # the lab query failed: activity cannot be judged, and the card says so
QUIET = "quiet"  # no activity in the record: no main card

MAX_DRAFTS = 3

# The upfront combination described for anti-MDA5 ILD (Tsuji 2020): its two drafted agents come from
# these options (glucocorticoid is named, not drafted: dose and route are the prescriber's).
_COMBINATION_OPTIONS = ("calcineurin-inhibitor-next-line", "cyclophosphamide-next-line")
# Taken with IV cyclophosphamide they add myelosuppression: the urgent card says to stop them.
_ANTIPROLIFERATIVE = frozenset({"mycophenolate", "methotrexate", "azathioprine"})
# Slow agents never drafted beside the urgent combination.
_SLOW_CLASSES = frozenset({"methotrexate", "azathioprine", "abatacept", "corticotropin", "mycophenolate"})


@dataclass(frozen=True, slots=True)
class RankedOption:
    option: Option
    favoured: tuple[Favour, ...]  # favoured_when entries this patient matches
    warnings: tuple[Avoid, ...]  # avoid_when "warn" entries this patient matches
    retreat: bool = False  # re-treating a prior responder
    retry: bool = False  # the class was stopped before an adequate trial
    orderable: bool = True  # offered as a draft order (severe-only options need their phenotype)
    held: tuple[Avoid, ...] = ()  # avoid_when "hold" entries: listed, never drafted (e.g. after oncology review)
    ask_why: bool = False  # a retry whose stop reason the record does not give: find out first, no draft


@dataclass(frozen=True, slots=True)
class Urgent:
    """Anti-MDA5 with ILD: the combination, and what the record shows."""

    critical: bool  # lung function falling: time-critical
    agents: tuple[Agent, ...]  # to draft as one suggestion
    held_back: tuple[str, ...]  # combination parts not drafted here, with why (e.g. pregnancy)
    stop: tuple[str, ...] = ()  # antiproliferatives taken now, to stop when cyclophosphamide starts


@dataclass(frozen=True, slots=True)
class Assessment:
    route: str
    disease: str  # short name for summaries: DM, PM, DM/PM, IMNM, myositis
    is_dm: bool
    age: int | None
    phenotypes: dict[str, str]
    conditions: dict[str, str]
    activity: Activity
    states: tuple[ClassState, ...]
    medication_incomplete: bool
    options: tuple[RankedOption, ...] = ()  # ranked, every one (the preview page shows all)
    drafts: tuple[RankedOption, ...] = ()  # at most MAX_DRAFTS, with draft orders
    removed: tuple[tuple[Option, Avoid], ...] = ()
    not_favoured: tuple[NotFavoured, ...] = ()
    refer: bool = False  # many failures: a myositis centre or a clinical trial
    urgent: Urgent | None = None
    safety: tuple[SafetyItem, ...] = ()
    reassess: tuple[Caution, ...] = ()
    statins: tuple[str, ...] = ()  # active statins (named for IMNM)
    cancer_screen_first: bool = False  # new adult myositis, no cancer recorded
    pregnancy_possible: bool = False  # not a man, of child-bearing age (or age unknown)

    @property
    def in_progress(self) -> tuple[ClassState, ...]:
        return tuple(s for s in self.states if s.in_progress and s.counts_as_second_agent)

    @property
    def failed(self) -> tuple[ClassState, ...]:
        return tuple(s for s in self.states if s.counts_as_second_agent and s.outcome == FAILED)

    @property
    def current(self) -> tuple[ClassState, ...]:
        return tuple(s for s in self.states if s.trial.ongoing)


def _disease(facts: PatientFacts) -> tuple[str, bool]:
    groups = {d.group for d in facts.diagnoses}
    if groups & vocab.DM_GROUPS:
        return "DM", True
    # The "with myopathy / respiratory involvement" groups span DM and PM codes (M33.x2, M33.x1):
    # a specific PM group wins over them.
    if groups & vocab.PM_GROUPS:
        return "PM", False
    if groups & {"dermatopolymyositis_unspecified", "dm_pm_with_respiratory_involvement", "dm_pm_with_myopathy"}:
        return "DM/PM", False
    if "immune_mediated_necrotizing_myopathy" in groups:
        return "IMNM", False
    return "myositis", False


def _pregnancy_possible(facts: PatientFacts, age: int | None, knowledge: Knowledge) -> bool:
    """Pregnancy checks concern people who could be pregnant: not a man, and of child-bearing age."""
    if (facts.sex or "").lower() == "male":
        return False
    if age is None:
        return True
    return knowledge.threshold("pregnancy-possible-age-min") <= age <= knowledge.threshold("pregnancy-possible-age-max")


def _together(option: Option, by_class: dict[str, ClassState]) -> bool | None:
    """For a combination: None unless each class failed alone; else whether they were ever taken together."""
    parts = [by_class.get(c) for c in option.combination_of]
    if any(p is None or p.outcome not in EXCLUDING or p.trial.first_date is None for p in parts):
        return None
    spans = sorted(
        (p.trial.first_date, p.trial.last_date or p.trial.first_date)
        for p in parts
        if p is not None and p.trial.first_date is not None
    )
    return not all(later[0] > earlier[1] for earlier, later in pairwise(spans))


def _candidate(option: Option, by_class: dict[str, ClassState]) -> tuple[bool, bool, bool]:
    """(offered, retreat, retry) for one option given what was tried."""
    if option.combination_of:
        return _together(option, by_class) is False, False, False
    state = by_class.get(option.therapy_class)
    if state is None:
        return True, False, False
    if state.trial.ongoing or state.outcome == IN_PROGRESS:
        return False, False, False  # what the patient takes now is not a new option
    if state.outcome == RESPONDED:
        return option.retreat_if_responded, True, False
    if state.outcome == INADEQUATE:
        return True, False, True
    return state.outcome not in EXCLUDING, False, False


def _rank(
    options: tuple[Option, ...],
    states: tuple[ClassState, ...],
    phen: dict[str, str],
    cond: dict[str, str],
    many_failed: bool,
    first_line_dmards: frozenset[str],
) -> tuple[tuple[RankedOption, ...], tuple[tuple[Option, Avoid], ...]]:
    by_class = {s.therapy_class: s for s in states}
    ranked: list[RankedOption] = []
    removed: list[tuple[Option, Avoid]] = []
    for option in options:
        offered, retreat, retry = _candidate(option, by_class)
        if not offered:
            continue
        if option.only_when and not any(p in phen for p in option.only_when):
            continue
        blocking = next((a for a in option.avoid_when if a.effect == "remove" and a.condition in cond), None)
        if blocking is not None:
            removed.append((option, blocking))
            continue
        held = tuple(a for a in option.avoid_when if a.effect == "hold" and a.condition in cond)
        state = by_class.get(option.therapy_class)
        ask_why = retry and state is not None and state.stop_reason is None
        ranked.append(
            RankedOption(
                option=option,
                retreat=retreat,
                retry=retry,
                held=held,
                ask_why=ask_why,
                favoured=tuple(f for f in option.favoured_when if f.phenotype in phen),
                warnings=tuple(a for a in option.avoid_when if a.effect == "warn" and a.condition in cond),
                orderable=(not option.draft_order_when or any(p in phen for p in option.draft_order_when))
                and not held
                and not ask_why,
            )
        )

    def tier(o: Option) -> float:
        # After many failures: line-2 agents first, then the third-line agents that are favoured then
        # (JAK inhibitor, IV cyclophosphamide), then a lone first-line DMARD, then the rest of line 3.
        if not many_failed:
            return o.line
        if o.favoured_after_failures:
            return 2.5
        if not o.combination_of and o.therapy_class in first_line_dmards:
            return 2.7
        return o.line

    def key(r: RankedOption) -> tuple[int, int, int, float, int, int, str]:
        # Options that cannot be drafted here (severe-only without the phenotype, held, ask why) come last.
        o = r.option
        return (
            0 if r.orderable else 1,
            0 if r.retreat else 1,
            0 if r.favoured else 1,
            tier(o),
            vocab.EVIDENCE_LEVELS.index(o.evidence_level),
            o.rank,
            o.id,
        )

    return tuple(sorted(ranked, key=key)), tuple(removed)


def _reassess(
    knowledge: Knowledge,
    a_states: tuple[ClassState, ...],
    is_dm: bool,
    phen: dict[str, str],
    activity: Activity,
    cancer_screen_first: bool,
) -> tuple[Caution, ...]:
    on_gc = any(s.therapy_class == "glucocorticoid" and s.trial.ongoing for s in a_states)
    keep = {
        "always": True,
        "on_glucocorticoid": on_gc,
        "dermatomyositis": is_dm,
        "not_imnm": "imnm" not in phen,
        # New myositis gets its own "screen for cancer" line; cancer already recorded needs no re-screen.
        "no_cancer_recorded": "cancer" not in phen and not cancer_screen_first,
        "enzymes_in_range": on_gc and activity.enzymes_normal,
    }
    return tuple(c for c in knowledge.cautions.values() if c.kind == "reassess" and keep.get(c.when or "", False))


def _statins(facts: PatientFacts) -> tuple[str, ...]:
    return tuple(sorted({d.ingredient for d in facts.current_statins}))


def _urgent(
    knowledge: Knowledge, phen: dict[str, str], cond: dict[str, str], states: tuple[ClassState, ...]
) -> Urgent | None:
    if not ("anti_mda5" in phen and "ild" in phen):
        return None
    by_id = {o.id: o for o in knowledge.options}
    by_class = {s.therapy_class: s for s in states}
    agents: list[Agent] = []
    held: list[str] = []
    for oid in _COMBINATION_OPTIONS:
        option = by_id[oid]
        state = by_class.get(option.therapy_class)
        if state is not None and (state.trial.ongoing or state.outcome in EXCLUDING or state.in_progress):
            held.append(f"{option.label}: {'taken now' if state.trial.ongoing else 'already tried'}")
            continue
        blocking = next((a for a in option.avoid_when if a.effect == "remove" and a.condition in cond), None)
        if blocking is not None:
            held.append(f"{option.label}: {blocking.text}")
            continue
        agents.append(option.agents[0])
    if not agents and held and all(h.endswith("taken now") for h in held):
        return None  # the combination is running: the in-progress card judges it, no urgent card
    stop = tuple(
        sorted(
            {
                d.ingredient
                for s in states
                if s.therapy_class in _ANTIPROLIFERATIVE and s.trial.ongoing
                for d in s.trial.drugs
                if d.ongoing
            }
        )
    )
    return Urgent(
        critical="lung_function_falling" in phen,
        agents=tuple(agents),
        held_back=tuple(held),
        stop=stop if any(a.rxnorm_in == by_id[_COMBINATION_OPTIONS[1]].agents[0].rxnorm_in for a in agents) else (),
    )


def assess(facts: PatientFacts, knowledge: Knowledge, today: date) -> Assessment:
    groups = {d.group for d in facts.diagnoses}
    disease, is_dm = _disease(facts)
    age = facts.age_on(today)
    activity = assess_activity(facts, knowledge, today)
    pregnancy_possible = _pregnancy_possible(facts, age, knowledge)
    phen = phenotypes(facts)
    if activity.lung_decline is not None:
        phen["lung_function_falling"] = activity.lung_decline.label
    if "clinically_amyopathic_dermatomyositis" in groups and not activity.raised_enzyme:
        # Amyopathic DM coded, muscle enzymes not raised: the skin leads. (Normal CK alone does not make
        # disease skin-predominant: it is also what a controlled myositis looks like.)
        phen["skin_predominant"] = next(
            d.label for d in facts.diagnoses if d.group == "clinically_amyopathic_dermatomyositis"
        )
    cond = conditions(
        facts,
        today,
        pregnancy_possible=pregnancy_possible,
        pregnancy_test_days=int(knowledge.threshold("pregnancy-test-days")),
    )
    if "cancer" in phen:
        cond["active_cancer"] = phen["cancer"]
    states = trial_states(facts, knowledge, activity, today)
    incomplete = any(g.resource_type.startswith("Medication") for g in facts.gaps)
    onset = min((d.onset for d in facts.diagnoses if d.group in vocab.MYOSITIS_GROUPS and d.onset), default=None)
    # What every route shares; each route below is this with its own route and findings (dataclasses.replace).
    base = Assessment(
        route=QUIET,
        disease=disease,
        is_dm=is_dm,
        age=age,
        phenotypes=phen,
        conditions=cond,
        activity=activity,
        states=states,
        medication_incomplete=incomplete,
        statins=_statins(facts),
        pregnancy_possible=pregnancy_possible,
        cancer_screen_first="cancer" not in phen
        and onset is not None
        and (today - onset).days <= knowledge.threshold("new-diagnosis-days"),
    )

    if not groups & vocab.MYOSITIS_GROUPS:
        return replace(base, route=NONE)
    # Juvenile first: a child with any myositis code belongs on the paediatric pathway.
    if (age is not None and age < ADULT_AGE) or (age is None and "juvenile_dermatomyositis" in groups):
        return replace(base, route=JUVENILE)
    if "inclusion_body_myositis" in groups:
        return replace(base, route=IBM)

    gc = next((s for s in states if s.therapy_class == "glucocorticoid" and s.trial.ongoing), None)
    gc_weeks = gc.weeks if gc is not None else None

    def checks(drafted: tuple[str, ...] = ()) -> tuple[SafetyItem, ...]:
        return safety_items(knowledge, facts, drafted, states, phen, gc_weeks, pregnancy_possible)

    urgent = _urgent(knowledge, phen, cond, states)
    if urgent is not None:
        drafted = tuple(
            o.therapy_class
            for oid in _COMBINATION_OPTIONS
            for o in knowledge.options
            if o.id == oid and o.agents[0] in urgent.agents
        )
        return replace(base, route=NEXT_LINE if activity.active else QUIET, urgent=urgent, safety=checks(drafted))

    second = [s for s in states if s.counts_as_second_agent]
    failed = [s for s in second if s.outcome == FAILED]
    many_failed = len(failed) >= knowledge.threshold("many-failures")
    # The first-line DMARDs offered to everyone (not only with a phenotype): methotrexate, azathioprine, MMF.
    first_line_dmards = frozenset(o.therapy_class for o in knowledge.options_for("first_line") if not o.only_when)

    def plan(
        route: str,
        stage: str,
        drafts_allowed: bool = True,
        not_favoured: tuple[NotFavoured, ...] = (),
        refer: bool = False,
        reassess: tuple[Caution, ...] = (),
    ) -> Assessment:
        ranked, removed = _rank(knowledge.options_for(stage), states, phen, cond, many_failed, first_line_dmards)
        orderable = [r for r in ranked if r.orderable]
        # The phenotype leads: when it favours some options, only those are drafted.
        favoured = [r for r in orderable if r.favoured or r.retreat]
        drafts = tuple(favoured or orderable)[:MAX_DRAFTS] if drafts_allowed else ()
        drafted = tuple(c for r in drafts for c in (r.option.combination_of or (r.option.therapy_class,)))
        return replace(
            base,
            route=route,
            options=ranked,
            drafts=drafts,
            removed=removed,
            safety=checks(drafted),
            not_favoured=not_favoured,
            refer=refer,
            reassess=reassess,
        )

    if incomplete and not states:
        return replace(base, route=NO_MEDICATION_DATA)
    if not second:
        # Glucocorticoid alone (or nothing) with activity, or any glucocorticoid now: a steroid-sparing
        # agent is due whatever the enzymes say (BSR 2022: started early, alongside glucocorticoid).
        if gc is not None or activity.active:
            return plan(FIRST_LINE, "first_line")
        return replace(base, route=QUIET)
    if any(s.in_progress for s in second):
        if activity.active:
            return plan(IN_PROGRESS_ONLY, "next_line", drafts_allowed=False)
        return replace(base, route=QUIET, safety=checks())
    if not activity.active and any(g.resource_type == "Observation" for g in facts.gaps):
        # "No activity in the record" would be a false reassurance when the labs could not be read.
        return replace(base, route=LABS_UNAVAILABLE, safety=checks())
    if not activity.active:
        judge = [s for s in second if s.outcome == JUDGE]
        if judge and "skin_predominant" in phen:
            # Muscle enzymes do not measure skin activity: name the skin-directed options, draft nothing.
            return plan(JUDGE_RESPONSE, "next_line", drafts_allowed=False)
        if judge and not activity.measured:
            return replace(base, route=JUDGE_RESPONSE, safety=checks())
        return replace(base, route=QUIET, safety=checks())
    if not any(s.outcome in (FAILED, RESPONDED) or (s.adequate and s.outcome != INTOLERANT) for s in second):
        # Only inadequate or intolerant trials (nothing else is left once activity is present and no
        # trial runs its window): optimise or switch within the first line, do not escalate.
        return plan(OPTIMISE, "first_line")
    return plan(
        NEXT_LINE,
        "next_line",
        not_favoured=knowledge.not_favoured,
        refer=many_failed,
        reassess=_reassess(knowledge, states, is_dm, phen, activity, base.cancer_screen_first),
    )
