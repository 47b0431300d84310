"""Hand-built PatientFacts for the cards tests (no mappings/ data involved)."""

from __future__ import annotations

from datetime import date, timedelta

from mappings.model import DataGap, Diagnosis, LabResult, PatientFacts, ResolvedDrug, TrialHistory

TODAY = date(2026, 11, 23)

INGREDIENT: dict[
    str, tuple[str, str | None]
] = {  # therapy class -> (ingredient, RxNorm IN) as the terminology table has them
    "glucocorticoid": ("prednisone", "8640"),
    "antimalarial": ("hydroxychloroquine", "5521"),
    "methotrexate": ("methotrexate", "6851"),
    "azathioprine": ("azathioprine", "1256"),
    "mycophenolate": ("mycophenolate mofetil", "68149"),
    "calcineurin_inhibitor": ("tacrolimus", "42316"),
    "immune_globulin": ("immunoglobulin G", "5666"),
    "rituximab": ("rituximab", "121191"),
    "cyclophosphamide": ("cyclophosphamide", "3002"),
    "il6_inhibitor": ("tocilizumab", "612865"),
    "tnf_inhibitor": ("infliximab", "191831"),
    "jak_inhibitor": ("tofacitinib", "1357536"),
    "abatacept": ("abatacept", "614391"),
    "corticotropin": ("corticotropin", "376"),
    # No RxNorm code is needed by the cards for these two (and none is invented here).
    "pjp_prophylaxis": ("sulfamethoxazole / trimethoprim", None),
    "statin": ("atorvastatin", None),  # a context class: PatientFacts.statins, never a trial
}


def diagnosis(group: str, label: str | None = None) -> Diagnosis:
    return Diagnosis(
        group=group,
        label=label or group.replace("_", " ").capitalize(),
        matched_by="code",
        matched=f"SNOMED CT test-{group}",
        record_id=f"cond-{group}",
    )


def trial(
    therapy_class: str,
    start: date | None,
    end: date | None = None,
    *,
    ongoing: bool = False,
    exposures: tuple[date, ...] | None = None,
) -> TrialHistory:
    name, rxcui = INGREDIENT[therapy_class]
    drug = ResolvedDrug(
        record_id=f"med-{therapy_class}",
        resource_type="MedicationStatement",
        therapy_class=therapy_class,
        ingredient=name,
        ingredient_rxcui=rxcui,
        matched_by="rxnorm",
        matched=f"RxNorm {rxcui} (IN)",
        start=start,
        end=end,
        ongoing=ongoing,
    )
    if exposures is None:
        exposures = tuple(d for d in (start,) if d is not None)
    return TrialHistory(
        therapy_class=therapy_class,
        agents=(name,),
        first_date=start,
        last_date=TODAY if ongoing else (end or start),
        ongoing=ongoing,
        record_count=1,
        exposure_dates=exposures,
        matched_by=("rxnorm",),
        drugs=(drug,),
    )


def lab(
    group: str,
    day: date | None,
    value: float | None = None,
    *,
    unit: str | None = "U/L",
    text: str | None = None,
    interpretation: tuple[str, ...] = (),
    high: float | None = None,
) -> LabResult:
    return LabResult(
        group=group,
        loinc="0000-0",
        label=group.replace("_", " ").upper() if group == "creatine_kinase" else group,
        record_id=f"obs-{group}-{day}",
        date=day,
        value=value,
        unit=unit if value is not None else None,
        value_text=text,
        interpretation=interpretation,
        reference_high=high,
    )


def facts(
    *,
    diagnoses: tuple[Diagnosis, ...] = (),
    trials: tuple[TrialHistory, ...] = (),
    labs: tuple[LabResult, ...] = (),
    birth_date: date | None = date(1979, 8, 21),
    sex: str | None = "female",
    gaps: tuple[DataGap, ...] = (),
    notes: tuple[str, ...] = (),
    unrecognised: tuple[str, ...] = (),
    statins: tuple[ResolvedDrug, ...] = (),
) -> PatientFacts:
    return PatientFacts(
        patient_id="example-dm-001",
        birth_date=birth_date,
        sex=sex,
        diagnoses=diagnoses,
        trials=tuple(sorted(trials, key=lambda t: (t.first_date or date.min, t.therapy_class))),
        labs=tuple(sorted(labs, key=lambda x: x.date or date.min)),
        gaps=gaps,
        notes=notes,
        unrecognised_medications=unrecognised,
        statins=statins,
    )


DM = diagnosis("dermatomyositis_adult", "Dermatomyositis")

REFERENCE_TRIALS = (
    trial("glucocorticoid", date(2021, 8, 19), ongoing=True),
    trial("antimalarial", date(2021, 10, 8), date(2022, 9, 23)),
    trial("mycophenolate", date(2022, 3, 7), date(2024, 2, 5)),
    trial("immune_globulin", date(2023, 10, 28), date(2024, 12, 1)),
    trial("il6_inhibitor", date(2024, 5, 15), date(2025, 3, 11)),
    trial("rituximab", date(2025, 4, 20), date(2025, 10, 17)),
)
REFERENCE_CK = (  # reference range as the example patients' laboratory reports it (26-192 U/L)
    lab("creatine_kinase", date(2026, 4, 15), 1850.0, high=192.0),
    lab("creatine_kinase", date(2026, 8, 3), 2400.0, high=192.0),
    lab("creatine_kinase", date(2026, 10, 18), 2100.0, high=192.0),
)


def reference_patient(**changes) -> PatientFacts:
    """The example-dm-001 patient of tests/fixtures/examples, as mappings/ should describe it."""
    args = dict(diagnoses=(DM,), trials=REFERENCE_TRIALS, labs=REFERENCE_CK)
    args.update(changes)
    return facts(**args)


def weeks_ago(n: int) -> date:
    return TODAY - timedelta(weeks=n)
