"""Records -> :class:`PatientFacts`: the one entry point ``service`` calls."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date

from mappings.conditions import counts_as_present, diagnoses_of
from mappings.dosetext import daily_dose_from_text
from mappings.drugs import Match, record_label, resolve_concepts
from mappings.labs import lab_result_of
from mappings.lookup import IngredientLookup
from mappings.model import (
    ConditionRecord,
    DataGap,
    Diagnosis,
    DraftOrder,
    LabResult,
    MedicationRecord,
    ObservationRecord,
    PatientFacts,
    PatientRecord,
    ResolvedDrug,
    TrialHistory,
)
from mappings.stop_reason import stop_reason
from mappings.terminology import Terminology, load_terminology
from mappings.timeline import Use, use_of

__all__ = ["build_facts", "resolve_medication"]

log = logging.getLogger(__name__)  # counts only: never names, identifiers or free text


def resolve_medication(
    record: MedicationRecord,
    terminology: Terminology,
    lookup: IngredientLookup | None = None,
    *,
    today: date | None = None,
) -> list[ResolvedDrug]:
    """Therapy-class members of one record (systemic products only; status is not judged here).

    Context classes (statins) are left out: they are no therapy; ``build_facts`` carries them
    on ``PatientFacts.statins``.
    """
    drugs = _members(record, terminology, lookup, today)
    return [d for d in drugs if not terminology.classes[d.therapy_class].context]


def _members(
    record: MedicationRecord, terminology: Terminology, lookup: IngredientLookup | None, today: date | None
) -> list[ResolvedDrug]:
    res = resolve_concepts(record, terminology, lookup)
    if res.local or not res.matches:
        return []
    return _resolved_drugs(record, res.matches, use_of(record, today or date.today()), terminology, {})


def resolve_orders(
    records: Sequence[MedicationRecord],
    terminology: Terminology,
    lookup: IngredientLookup | None = None,
    *,
    selections: frozenset[str] | None = None,
) -> tuple[DraftOrder, ...]:
    """The draft MedicationRequests of an order hook, each with the therapy classes it names (the same
    terminology as the record: any RxNorm TTY, text, contained or referenced Medication). Context classes
    count here: a statin ordered for a patient with necrotising myopathy is what the order check is for."""
    out = []
    for record in records:
        reference = f"{record.resource_type}/{record.id}"
        drugs = _members(record, terminology, lookup, None)
        out.append(
            DraftOrder(
                reference=reference,
                label=record_label(record),
                drugs=tuple(drugs),
                selected=selections is None or reference in selections,
            )
        )
    return tuple(out)


def _resolved_drugs(
    record: MedicationRecord,
    matches: Sequence[Match],
    use: Use,
    term: Terminology,
    doses: dict[str | None, float | None],
) -> list[ResolvedDrug]:
    # The record's daily dose belongs to its ingredient only when it names one ingredient.
    dose, source = _record_dose(record, term, doses) if len({m.ingredient for m in matches}) == 1 else (None, None)
    out = []
    for m in matches:
        ing = term.ingredients[m.ingredient]
        out.append(
            ResolvedDrug(
                record_id=record.id,
                resource_type=record.resource_type,
                therapy_class=ing.therapy_class,
                ingredient=ing.name,
                ingredient_rxcui=ing.rxcui,
                matched_by=m.matched_by,
                matched=m.matched,
                start=use.start,
                end=use.end,
                ongoing=use.ongoing,
                daily_dose_mg=dose,
                dose_source=source,
                stop_reason=stop_reason(record.status_reason),
            )
        )
    return out


def _record_dose(
    record: MedicationRecord, term: Terminology, doses: dict[str | None, float | None]
) -> tuple[float | None, str | None]:
    """Structured dose first; the Dosage text only when there is none (issue 15).

    ``doses``: the texts already read in this call (refills repeat one sig); it lives for one call only,
    so no patient's text outlives the request."""
    if record.daily_dose_mg is not None:
        return record.daily_dose_mg, "structured"
    if record.resource_type == "MedicationAdministration":
        return None, None  # an administration's text describes one dose, not a daily dose
    text = record.dosage_text
    if text in doses:
        dose = doses[text]
    else:
        dose = doses[text] = daily_dose_from_text(text, term.drug_words)
    return (dose, "text") if dose is not None else (None, None)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def build_facts(
    patient_id: str,
    patient: PatientRecord | None,
    conditions: Sequence[ConditionRecord],
    medications: Sequence[MedicationRecord],
    observations: Sequence[ObservationRecord],
    *,
    today: date,
    gaps: Sequence[DataGap] = (),
    terminology: Terminology | None = None,
    lookup: IngredientLookup | None = None,
) -> PatientFacts:
    term = terminology or load_terminology()
    notes: list[str] = []

    # --- diagnoses
    diagnoses: list[Diagnosis] = []
    skipped_conditions: Counter[str] = Counter()
    for c in conditions:
        ok, why = counts_as_present(c)
        if not ok:
            skipped_conditions[why or "not active"] += 1
            continue
        diagnoses.extend(diagnoses_of(c, term))
    for why, n in sorted(skipped_conditions.items()):
        notes.append(f"{_plural(n, 'condition record')} ({why}) not counted as current diagnoses")
    diagnoses.sort(key=lambda d: (d.group, d.onset or date.min, d.record_id))

    # --- medications
    drugs_by_class: dict[str, list[ResolvedDrug]] = defaultdict(list)
    statins: list[ResolvedDrug] = []
    exposures: dict[str, set[date]] = defaultdict(set)
    ignored: Counter[str] = Counter()
    local = 0
    unresolved_refs = 0
    unrecognised: dict[str, None] = {}
    doses: dict[str | None, float | None] = {}  # dosage text -> mg/day, for this call only
    for r in medications:
        use = use_of(r, today)
        if not use.counts:
            ignored[f"{r.resource_type} {use.why_not}"] += 1
            continue
        res = resolve_concepts(r, term, lookup)
        if not res.matches:
            if r.medication_unresolved and not r.medication.codings and not r.medication.text:
                unresolved_refs += 1
            else:
                unrecognised.setdefault(record_label(r), None)
            continue
        if res.local:
            local += 1
            continue
        for drug in _resolved_drugs(r, res.matches, use, term, doses):
            if term.classes[drug.therapy_class].context:
                # never a trial: cards would count an unknown class as a tried immunosuppressant
                statins.append(drug)
                continue
            drugs_by_class[drug.therapy_class].append(drug)
            exposures[drug.therapy_class].update(use.exposure)
    for why, n in sorted(ignored.items()):
        kind, _, reason = why.partition(" ")
        notes.append(
            f"{_plural(n, kind + ' record')} {reason} were ignored"
            if n > 1
            else f"1 {kind} record {reason} was ignored"
        )
    if local:
        notes.append(
            f"{_plural(local, 'non-systemic product')} (eye drops, creams, ointments, gels) not counted as systemic therapy"
        )
    if unresolved_refs:
        notes.append(
            f"{_plural(unresolved_refs, 'medication record')} pointed at a Medication that could not be retrieved"
        )

    trials = [_trial(cls, drugs, exposures[cls], today) for cls, drugs in drugs_by_class.items()]
    trials.sort(key=lambda t: (t.first_date is None, t.first_date or date.min, t.therapy_class))

    # --- labs
    labs: list[LabResult] = []
    skipped_labs: Counter[str] = Counter()
    for o in observations:
        lab, why = lab_result_of(o, term)
        if lab is not None:
            labs.append(lab)
        elif why:
            skipped_labs[why] += 1
    for why, n in sorted(skipped_labs.items()):
        notes.append(f"{_plural(n, 'lab result')} {why} ignored")
    labs.sort(key=lambda x: (x.date is None, x.date or date.min, x.group, x.record_id))

    log.debug(
        "facts built: %d diagnoses, %d trials, %d labs, %d unrecognised medications",
        len(diagnoses),
        len(trials),
        len(labs),
        len(unrecognised),
    )
    return PatientFacts(
        patient_id=patient_id,
        birth_date=patient.birth_date if patient else None,
        sex=patient.gender if patient else None,
        diagnoses=tuple(diagnoses),
        trials=tuple(trials),
        labs=tuple(labs),
        unrecognised_medications=tuple(unrecognised),
        statins=tuple(sorted(statins, key=lambda d: (d.start is None, d.start or date.min, d.record_id, d.ingredient))),
        gaps=tuple(gaps),
        notes=tuple(notes),
    )


def _trial(cls: str, drugs: list[ResolvedDrug], exposure: set[date], today: date) -> TrialHistory:
    drugs.sort(key=lambda d: (d.start is None, d.start or date.min, d.record_id, d.ingredient))
    known = [d for x in drugs for d in (x.start, x.end) if d is not None and d <= today]
    known.extend(exposure)
    # A stop date in the future is a plan, not a date of use; an ongoing drug was last used today.
    last = max(known) if known else None
    ongoing = any(d.ongoing for d in drugs)
    if ongoing:
        last = today if last is None or last < today else last
    return TrialHistory(
        therapy_class=cls,
        agents=tuple(sorted({d.ingredient for d in drugs})),
        first_date=min(known) if known else None,
        last_date=last,
        ongoing=ongoing,
        record_count=len({d.record_id for d in drugs}),
        exposure_dates=tuple(sorted(exposure)),
        matched_by=tuple(sorted({d.matched_by for d in drugs})),
        drugs=tuple(drugs),
    )
