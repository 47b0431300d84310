"""Who gets which card: pure functions from PatientFacts to an Assessment.

No wording here beyond ids; cards/render.py turns the Assessment into card text using the
knowledge base. Rules follow algorithm.md: stage by what was tried (§0, §6), trial windows
(§3), special situations (§4), safety checks (§5), "before escalating" (§1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mappings.model import PatientFacts

from . import vocab
from .knowledge_base import Avoid, Caution, Favour, Knowledge, NotFavoured, Option
from .phenotype import conditions, phenotypes
from .trials import ClassState, trial_states

__all__ = ["RankedOption", "Assessment", "assess", "ADULT_AGE"]

ADULT_AGE = 18

# Routes: which main card the patient gets.
NONE = "none"  # no myositis: no cards at all
IBM = "ibm"
JUVENILE = "juvenile"
NO_MEDICATION_DATA = "no_medication_data"
FIRST_LINE = "first_line"
NEXT_LINE = "next_line"
IN_PROGRESS_ONLY = "in_progress_only"  # a steroid-sparing trial is running and none has failed


@dataclass(frozen=True, slots=True)
class RankedOption:
    option: Option
    favoured: tuple[Favour, ...]  # favoured_when entries this patient matches
    warnings: tuple[Avoid, ...]  # avoid_when "warn" entries this patient matches


@dataclass(frozen=True, slots=True)
class Assessment:
    route: str
    disease: str  # short name for summaries: DM, PM, DM/PM, IMNM, myositis
    is_dm: bool
    age: int | None
    phenotypes: dict[str, str]
    conditions: dict[str, str]
    states: tuple[ClassState, ...]
    medication_incomplete: bool
    options: tuple[RankedOption, ...] = ()
    removed: tuple[tuple[Option, Avoid], ...] = ()
    not_favoured: tuple[NotFavoured, ...] = ()
    situations: tuple[str, ...] = ()
    screening: tuple[Caution, ...] = ()
    reassess: tuple[Caution, ...] = ()

    @property
    def in_progress(self) -> tuple[ClassState, ...]:
        return tuple(s for s in self.states if s.in_progress)


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


def _medication_incomplete(facts: PatientFacts) -> bool:
    return any(g.resource_type.startswith("Medication") for g in facts.gaps)


def _tried_apart(option: Option, states: tuple[ClassState, ...]) -> bool:
    """Every class of a combination was tried and stopped, and never at the same time as another."""
    by_class = {s.therapy_class: s for s in states}
    parts = [by_class.get(c) for c in option.combination_of]
    if any(p is None or p.in_progress or p.trial.ongoing or p.trial.first_date is None for p in parts):
        return False
    spans = sorted((p.trial.first_date, p.trial.last_date or p.trial.first_date) for p in parts if p is not None)
    return all(later[0] > earlier[1] for earlier, later in zip(spans, spans[1:]))


def _rank(options: tuple[Option, ...], states: tuple[ClassState, ...], phen: dict[str, str],
          cond: dict[str, str]) -> tuple[tuple[RankedOption, ...], tuple[tuple[Option, Avoid], ...]]:
    tried = {s.therapy_class for s in states}
    ranked: list[RankedOption] = []
    removed: list[tuple[Option, Avoid]] = []
    for option in options:
        if option.combination_of:
            if not _tried_apart(option, states):
                continue  # the combination is for patients who failed each drug alone
        elif option.therapy_class in tried:
            continue  # a class already tried never comes back as a suggestion
        if option.only_when and not any(p in phen for p in option.only_when):
            continue
        blocking = next((a for a in option.avoid_when if a.effect == "remove" and a.condition in cond), None)
        if blocking is not None:
            removed.append((option, blocking))
            continue
        ranked.append(RankedOption(
            option=option,
            favoured=tuple(f for f in option.favoured_when if f.phenotype in phen),
            warnings=tuple(a for a in option.avoid_when if a.effect == "warn" and a.condition in cond),
        ))

    def key(r: RankedOption) -> tuple[int, int, int, int, str]:
        o = r.option
        return (0 if r.favoured else 1, o.line, vocab.EVIDENCE_LEVELS.index(o.evidence_level), o.rank, o.id)

    return tuple(sorted(ranked, key=key)), tuple(removed)


def _screening(knowledge: Knowledge, ranked: tuple[RankedOption, ...]) -> tuple[Caution, ...]:
    ids: list[str] = []
    for r in ranked:
        for cid in r.option.cautions:
            if cid not in ids:
                ids.append(cid)
    return tuple(knowledge.cautions[cid] for cid in ids if knowledge.cautions[cid].kind == "screening")


def _current_daily_dose(states: tuple[ClassState, ...], rxcui: str) -> float | None:
    """The recorded daily dose of the ongoing course of one ingredient, or None.

    The latest-starting ongoing record decides (an older "active" record left open after a
    taper must not speak for today); several records starting that day: the highest known dose.
    """
    ongoing = [d for s in states for d in s.trial.drugs if d.ongoing and d.ingredient_rxcui == rxcui]
    if not ongoing:
        return None
    latest = max(d.start or date.min for d in ongoing)
    doses = [d.daily_dose_mg for d in ongoing if (d.start or date.min) == latest and d.daily_dose_mg is not None]
    return max(doses) if doses else None


def _dose_text(mg: float, above: float | None = None) -> str:
    """One decimal at most, unless rounding would hide that the dose is above the threshold."""
    text = f"{round(mg, 1):g}"
    return text if above is None or float(text) > above else f"{mg:.8g}"


def _risk_findings(caution: Caution, states: tuple[ClassState, ...], phen: dict[str, str]) -> list[str]:
    """What the record shows of the caution's risk factors (algorithm.md §5 for PJP), in knowledge order."""
    out: list[str] = []
    for factor in caution.risk_factors:
        if factor.kind == "ongoing_class":
            agents = sorted({d.ingredient for s in states if s.therapy_class in factor.classes
                             for d in s.trial.drugs if d.ongoing})
            if agents:
                out.append(factor.describe(agents=", ".join(agents)))
        elif factor.kind == "phenotype":
            if any(p in phen for p in factor.phenotypes):
                out.append(factor.describe())
        elif factor.kind == "daily_dose_above" and factor.above_mg_per_day is not None:
            for agent in factor.agents:
                dose = _current_daily_dose(states, agent.rxnorm_in)
                if dose is not None and dose > factor.above_mg_per_day:
                    out.append(factor.describe(ingredient=agent.name, dose=_dose_text(dose, factor.above_mg_per_day),
                                               threshold=_dose_text(factor.above_mg_per_day)))
    return out


# The PJP prompt is shown once per response: on the screening card when cyclophosphamide is
# offered (this screening caution), otherwise as the "when: pjp_risk" reassess item.
_PJP_SCREENING = "pjp-prophylaxis"


def _risk_cautions(knowledge: Knowledge) -> tuple[Caution, ...]:
    return tuple(c for c in knowledge.cautions.values() if c.kind == "reassess" and c.when == "pjp_risk")


def _with_record_findings(knowledge: Knowledge, screening: tuple[Caution, ...], states: tuple[ClassState, ...],
                          phen: dict[str, str]) -> tuple[Caution, ...]:
    """The PJP screening item also says which risk factors the record shows (its reassess twin is not shown)."""
    if not any(c.id == _PJP_SCREENING for c in screening):
        return screening
    sentences = [c.findings_sentence(f) for c in _risk_cautions(knowledge) if (f := _risk_findings(c, states, phen))]
    if not sentences:
        return screening
    return tuple(c.with_sentence_after(" ".join(sentences)) if c.id == _PJP_SCREENING else c for c in screening)


def _with_findings(caution: Caution, states: tuple[ClassState, ...], phen: dict[str, str]) -> Caution | None:
    """A "when: pjp_risk" caution opened by what the record shows, or None when it shows none."""
    findings = _risk_findings(caution, states, phen)
    return caution.with_sentence_before(caution.findings_sentence(findings)) if findings else None


def _with_pjp_prompt(knowledge: Knowledge, screening: tuple[Caution, ...], states: tuple[ClassState, ...],
                     phen: dict[str, str]) -> tuple[Caution, ...]:
    """Outside the next-line route there is no reassess card: the PJP prompt joins the safety checks
    (high-dose glucocorticoid, the strongest drug risk factor, is most often met in first-line care)."""
    if any(c.id == _PJP_SCREENING for c in screening):
        return screening
    prompts = [p for c in _risk_cautions(knowledge) if (p := _with_findings(c, states, phen)) is not None]
    return (*screening, *prompts)


def _reassess(knowledge: Knowledge, states: tuple[ClassState, ...], is_dm: bool, phen: dict[str, str],
              screening: tuple[Caution, ...]) -> tuple[Caution, ...]:
    on_gc = any(s.therapy_class == "glucocorticoid" and s.trial.ongoing for s in states)
    screened = {c.id for c in screening}
    out = []
    for caution in knowledge.cautions.values():
        if caution.kind != "reassess":
            continue
        if caution.when == "on_glucocorticoid" and not on_gc:
            continue
        if caution.when == "dermatomyositis" and not is_dm:
            continue
        if caution.when == "pjp_risk":
            if _PJP_SCREENING in screened:
                continue  # shown once: on the screening card when cyclophosphamide is offered
            prompt = _with_findings(caution, states, phen)
            if prompt is None:
                continue
            caution = prompt
        out.append(caution)
    return tuple(out)


def _situations(knowledge: Knowledge, phen: dict[str, str], cond: dict[str, str]) -> tuple[str, ...]:
    present = {"imnm": "imnm" in phen, "anti_mda5": "anti_mda5" in phen,
               "pregnancy": "pregnancy" in cond, "cancer": "cancer" in phen}
    return tuple(p.situation for p in knowledge.pathways if present.get(p.situation))


def assess(facts: PatientFacts, knowledge: Knowledge, today: date) -> Assessment:
    groups = {d.group for d in facts.diagnoses}
    disease, is_dm = _disease(facts)
    age = facts.age_on(today)
    phen = phenotypes(facts)
    cond = conditions(facts, today)
    states = trial_states(facts, knowledge, today)
    incomplete = _medication_incomplete(facts)
    base = dict(disease=disease, is_dm=is_dm, age=age, phenotypes=phen, conditions=cond,
                states=states, medication_incomplete=incomplete)

    if not groups & vocab.MYOSITIS_GROUPS:
        return Assessment(route=NONE, **base)
    # Juvenile first: a child with any myositis code belongs on the paediatric pathway.
    if (age is not None and age < ADULT_AGE) or (age is None and "juvenile_dermatomyositis" in groups):
        return Assessment(route=JUVENILE, **base)
    if "inclusion_body_myositis" in groups:
        return Assessment(route=IBM, **base)

    situations = _situations(knowledge, phen, cond)
    tried = {s.therapy_class for s in states}
    second_agents = [s for s in states if s.counts_as_second_agent]
    failed = [s for s in second_agents if not s.in_progress]

    if incomplete and not states:
        return Assessment(route=NO_MEDICATION_DATA, situations=situations, **base)
    if not second_agents:
        ranked, removed = _rank(knowledge.options_for("first_line"), states, phen, cond)
        screening = _with_record_findings(knowledge, _screening(knowledge, ranked), states, phen)
        return Assessment(route=FIRST_LINE, options=ranked, removed=removed, situations=situations,
                          screening=_with_pjp_prompt(knowledge, screening, states, phen), **base)
    if not failed:
        # Only in-progress steroid-sparing trials: let them run; escalation would be premature.
        return Assessment(route=IN_PROGRESS_ONLY, situations=situations,
                          screening=_with_pjp_prompt(knowledge, (), states, phen), **base)
    ranked, removed = _rank(knowledge.options_for("next_line"), states, phen, cond)
    screening = _screening(knowledge, ranked)
    return Assessment(
        route=NEXT_LINE, options=ranked, removed=removed, not_favoured=knowledge.not_favoured,
        situations=situations, screening=_with_record_findings(knowledge, screening, states, phen),
        reassess=_reassess(knowledge, states, is_dm, phen, screening), **base,
    )
