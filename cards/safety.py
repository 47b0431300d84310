"""The safety card's checks: for each class drafted on this call, what to check before starting it;
for each class taken now, what to watch while on it (issue 15). Each check says what the record shows
(a result and its date, a risk factor, or nothing) and is silent when it is not needed: a first-course
screen after the class was already taken, a pregnancy check for someone who cannot be pregnant, PJP
prophylaxis already under way. Pure functions of the facts and the knowledge base.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from mappings.model import PatientFacts

from .knowledge_base import Caution, Knowledge
from .phenotype import latest
from .trials import ClassState

__all__ = ["SafetyItem", "safety_items", "risk_findings"]


@dataclass(frozen=True, slots=True)
class SafetyItem:
    """One check on the safety card, with what the record shows for it."""

    caution: Caution
    classes: tuple[str, ...]  # class labels it applies to on this call
    found: tuple[str, ...] = ()  # record evidence (lab results, conditions, risk factors)
    open: bool = True  # nothing in the record shows it done


def _current_daily_dose(states: tuple[ClassState, ...], rxcui: str) -> tuple[bool, float | None]:
    """(taking it now, the recorded daily dose of the ongoing course or None).

    The latest-starting ongoing record decides (an older "active" record left open after a
    taper must not speak for today); several records starting that day: the highest known dose.
    """
    ongoing = [d for s in states for d in s.trial.drugs if d.ongoing and d.ingredient_rxcui == rxcui]
    if not ongoing:
        return False, None
    latest = max(d.start or date.min for d in ongoing)
    doses = [d.daily_dose_mg for d in ongoing if (d.start or date.min) == latest and d.daily_dose_mg is not None]
    return True, (max(doses) if doses else None)


def _dose_text(mg: float, above: float | None = None) -> str:
    """One decimal at most, unless rounding would hide that the dose is above the threshold."""
    text = f"{round(mg, 1):g}"
    return text if above is None or float(text) > above else f"{mg:.8g}"


def risk_findings(caution: Caution, states: tuple[ClassState, ...], phen: dict[str, str]) -> list[str]:
    """What the record shows of the caution's risk factors (algorithm.md §5 for PJP), in knowledge order.

    A glucocorticoid taken now whose dose the record does not state is named too ("dose not
    recorded - check"): silence would read as "below the threshold"."""
    out: list[str] = []
    for factor in caution.risk_factors:
        if factor.kind == "ongoing_class":
            agents = sorted(
                {d.ingredient for s in states if s.therapy_class in factor.classes for d in s.trial.drugs if d.ongoing}
            )
            if agents:
                out.append(factor.describe(agents=", ".join(agents)))
        elif factor.kind == "phenotype":
            if any(p in phen for p in factor.phenotypes):
                out.append(factor.describe())
        elif factor.kind == "daily_dose_above" and factor.above_mg_per_day is not None:
            for agent in factor.agents:
                taking, dose = _current_daily_dose(states, agent.rxnorm_in)
                if taking and dose is None:
                    out.append(f"{agent.name} ongoing, dose not recorded - check")
                elif dose is not None and dose > factor.above_mg_per_day:
                    out.append(
                        factor.describe(
                            ingredient=agent.name,
                            dose=_dose_text(dose, factor.above_mg_per_day),
                            threshold=_dose_text(factor.above_mg_per_day),
                        )
                    )
    return out


def _tolerated_before(state: ClassState | None) -> bool:
    """Given for a whole adequate trial: a first-course screen (TPMT) is no longer needed. A course stopped
    early, for whatever reason, still needs it."""
    return state is not None and state.adequate


def safety_items(
    knowledge: Knowledge,
    facts: PatientFacts,
    drafted: tuple[str, ...],
    states: tuple[ClassState, ...],
    phen: dict[str, str],
    gc_weeks: int | None,
    pregnancy_possible: bool,
) -> tuple[SafetyItem, ...]:
    """Checks for the classes drafted on this call (before starting) and those taken now (while on them)."""
    by_class = {s.therapy_class: s for s in states}
    current = {s.therapy_class for s in states if s.trial.ongoing}
    items: list[SafetyItem] = []
    for caution in knowledge.cautions.values():
        if caution.kind == "screening":
            classes = [c for c in caution.applies_to if c in drafted]
            if caution.first_course_only:
                classes = [c for c in classes if not _tolerated_before(by_class.get(c))]
            if not classes:
                continue
            if "pregnancy" in caution.conditions and not pregnancy_possible:
                continue  # a pregnancy check for a man or a woman past child-bearing age is noise
        elif caution.kind == "monitoring":
            classes = [c for c in caution.applies_to if c in current]
            if not classes:
                continue
            if caution.when == "glucocorticoid_long_course" and (
                gc_weeks is None or gc_weeks < knowledge.threshold("glucocorticoid-long-course-weeks")
            ):
                continue
        else:
            continue
        found = tuple(_found(facts, caution))
        if caution.when == "pjp_risk":
            if "pjp_prophylaxis" in current:
                continue  # already on prophylaxis: nothing to prompt
            found = tuple(risk_findings(caution, states, phen))
            if not found:
                continue
        items.append(
            SafetyItem(
                caution=caution,
                classes=tuple(knowledge.classes[c].label for c in classes),
                found=found,
                open=caution.when == "pjp_risk" or not found,
            )
        )
    return _pjp_once(items)


_PJP_SCREENING = "pjp-prophylaxis"


def _pjp_once(items: list[SafetyItem]) -> tuple[SafetyItem, ...]:
    """PJP is prompted once: when cyclophosphamide is drafted its screening item carries what the record
    shows, and the while-on-therapy item is dropped."""
    screening = next((i for i in items if i.caution.id == _PJP_SCREENING), None)
    risk = next((i for i in items if i.caution.when == "pjp_risk"), None)
    if screening is None or risk is None:
        return tuple(items)
    merged = SafetyItem(caution=screening.caution, classes=screening.classes, found=risk.found, open=True)
    return tuple(merged if i is screening else i for i in items if i is not risk)


def _found(facts: PatientFacts, caution: Caution) -> list[str]:
    """The record's latest result for each lab of the check, and its matching conditions (render formats)."""
    out = [f"lab:{group}" for group in caution.labs if latest(facts, group) is not None]
    out += [f"condition:{d.group}" for d in facts.diagnoses if d.group in caution.conditions]
    return out
