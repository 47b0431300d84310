"""Plain domain objects that cross package lines.

Records are what the EHR said, one per FHIR resource; ``service`` builds them
at the edge from validated FHIR JSON, so nothing past the edge touches FHIR
library types. Facts are what ``mappings`` made of the records (code ->
meaning); ``cards`` reads only facts.

Data flows one way: records -> ``mappings.build_facts`` -> facts ->
``cards.build_cards``. Nothing here does I/O.

Each is a frozen ``msgspec.Struct``, not a frozen dataclass: a heavy record makes some 700 of them
per hook call, and a frozen dataclass sets each field through ``object.__setattr__`` in Python
(~3.7 us for a medication record; a Struct ~0.75 us, built in C). Immutable, hashable and compared
by value all the same. ``gc=False``: they hold only strings, numbers, dates, tuples and one another,
never anything that could point back at them, so the cyclic collector has nothing to find in them.
"""

from __future__ import annotations

from datetime import date

from msgspec import Struct

__all__ = [
    "Coding",
    "Concept",
    "PatientRecord",
    "ConditionRecord",
    "MedicationRecord",
    "ObservationRecord",
    "DataGap",
    "Diagnosis",
    "ResolvedDrug",
    "TrialHistory",
    "LabResult",
    "PatientFacts",
    "DraftOrder",
]


# --- coded values ---------------------------------------------------------------


class Coding(Struct, frozen=True, gc=False):
    """One FHIR Coding, reduced to what terminology needs."""

    system: str | None
    code: str | None
    display: str | None = None


class Concept(Struct, frozen=True, gc=False):
    """A FHIR CodeableConcept: its codings plus free text."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None


# --- records: one per FHIR resource, built by service/ -----------------------------


class PatientRecord(Struct, frozen=True, gc=False):
    id: str
    birth_date: date | None = None
    gender: str | None = None


class ConditionRecord(Struct, frozen=True, gc=False):
    id: str
    code: Concept
    clinical_status: str | None = None  # active | recurrence | relapse | inactive | remission | resolved
    verification_status: str | None = (
        None  # unconfirmed | provisional | differential | confirmed | refuted | entered-in-error
    )
    onset: date | None = None
    abatement: date | None = None
    recorded: date | None = None


class MedicationRecord(Struct, frozen=True, gc=False):
    """A MedicationStatement, MedicationRequest or MedicationAdministration.

    ``medication`` is ``medicationCodeableConcept`` or, when the resource
    pointed at a Medication (contained or by reference), that Medication's
    ``code``; its ingredients and form come along so a product coded only
    by ingredient list can still be recognised. Partial FHIR dates
    (``2024``, ``2024-03``) arrive as the first day they cover.
    """

    id: str
    resource_type: str  # MedicationStatement | MedicationRequest | MedicationAdministration
    status: str | None
    medication: Concept
    ingredients: tuple[Concept, ...] = ()
    form: Concept | None = None
    route: Concept | None = None
    intent: str | None = None  # MedicationRequest only
    effective_start: date | None = None  # effective[x] (Statement, Administration)
    effective_end: date | None = None
    authored_on: date | None = None  # MedicationRequest.authoredOn
    validity_start: date | None = None  # MedicationRequest.dispenseRequest.validityPeriod
    validity_end: date | None = None
    date_asserted: date | None = None  # MedicationStatement.dateAsserted
    medication_unresolved: bool = False  # a Medication reference we could not follow
    # mg per day from the one structured dosage (Statement.dosage / Request.dosageInstruction),
    # only when it is unambiguous (one dosage, one dose in mg, a fixed frequency per d/h/wk, not as needed);
    # None otherwise, and always None for an Administration (one dose, not a daily dose).
    daily_dose_mg: float | None = None
    # Why the record says the drug was stopped or not taken (statusReason text or codings' display);
    # mappings/stop_reason.py reads intolerance from it. Never shown on a card as free text.
    status_reason: str | None = None
    # The free text of that one Dosage (Statement/Request, not as needed), read by mappings only
    # when there is no structured dose. Patient data: never logged.
    dosage_text: str | None = None


class ObservationRecord(Struct, frozen=True, gc=False):
    id: str
    code: Concept
    status: str | None = None
    effective: date | None = None
    value: float | None = None  # valueQuantity.value
    unit: str | None = None
    value_text: str | None = None  # valueString or valueCodeableConcept (e.g. "positive")
    value_codes: tuple[Coding, ...] = ()
    interpretation: tuple[str, ...] = ()  # interpretation codes, e.g. "H", "POS"
    reference_high: float | None = None


class DataGap(Struct, frozen=True, gc=False):
    """Data the service needed but could not get; cards say so."""

    resource_type: str  # e.g. "MedicationRequest", "Patient"
    reason: str  # safe for a clinician to read; never patient data


# --- facts: what mappings/ made of the records -------------------------------------


class Diagnosis(Struct, frozen=True, gc=False):
    group: str  # condition value-set group, e.g. "dermatomyositis_adult", "interstitial_lung_disease"
    label: str  # display text for cards
    matched_by: str  # "code" | "text"
    matched: str  # what matched, e.g. "SNOMED CT 396230008" or 'text "dermatomyositis"'
    record_id: str
    onset: date | None = None
    clinical_status: str | None = None  # as recorded: active | recurrence | relapse (inactive ones are dropped)


class ResolvedDrug(Struct, frozen=True, gc=False):
    """One medication record recognised as a member of a therapy class."""

    record_id: str
    resource_type: str
    therapy_class: str  # class id from mappings/data, e.g. "rituximab", "calcineurin_inhibitor"
    ingredient: str  # RxNorm ingredient name, lower case, e.g. "tacrolimus"
    ingredient_rxcui: str | None
    matched_by: str  # "rxnorm" | "rxnav" | "atc" | "ndc" | "text"
    matched: str  # what matched, e.g. "RxNorm 1119402 (SBD)" or 'text "CellCept"'
    start: date | None
    end: date | None
    ongoing: bool
    # The record's unambiguous daily dose, when the record names this one ingredient only
    # (a combination product's dose is not any one ingredient's dose).
    daily_dose_mg: float | None = None
    stop_reason: str | None = None  # "intolerance" | "inefficacy" | None (not stated or not recognised)
    # Where daily_dose_mg came from: "structured" (Dosage.doseAndRate + timing), "text" (the
    # Dosage's free text, read conservatively) or None when the dose is unknown - cards should
    # then say "dose unknown - check" rather than stay silent.
    dose_source: str | None = None

    @property
    def dose_known(self) -> bool:
        return self.daily_dose_mg is not None


class TrialHistory(Struct, frozen=True, gc=False):
    """Everything the record says about one therapy class, as a timeline."""

    therapy_class: str
    agents: tuple[str, ...]  # ingredient names, sorted
    first_date: date | None
    last_date: date | None  # last known date of use (end, or last record date)
    ongoing: bool
    record_count: int
    exposure_dates: tuple[date, ...]  # distinct dated events, sorted (administrations, starts)
    matched_by: tuple[str, ...]  # distinct resolution methods, sorted
    drugs: tuple[ResolvedDrug, ...]


class LabResult(Struct, frozen=True, gc=False):
    group: str  # lab group from mappings/data, e.g. "creatine_kinase", "anti_mda5"
    loinc: str
    label: str
    record_id: str
    date: date | None = None
    value: float | None = None
    unit: str | None = None
    value_text: str | None = None
    interpretation: tuple[str, ...] = ()
    reference_high: float | None = None


class PatientFacts(Struct, frozen=True, gc=False):
    patient_id: str
    birth_date: date | None
    sex: str | None
    diagnoses: tuple[Diagnosis, ...]  # active and not refuted / entered-in-error
    trials: tuple[TrialHistory, ...]  # sorted by first_date, then class id
    labs: tuple[LabResult, ...]  # sorted by date
    unrecognised_medications: tuple[str, ...] = ()  # labels of records no class matched
    # Statin records (any status that counts as use), never in ``trials``: a statin is no line of
    # myositis therapy, but cards must name an active one in necrotising myopathy (issue 14).
    statins: tuple[ResolvedDrug, ...] = ()
    gaps: tuple[DataGap, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. "2 records marked entered-in-error were ignored"

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def has_diagnosis(self, *groups: str) -> bool:
        return any(d.group in groups for d in self.diagnoses)

    @property
    def current_statins(self) -> tuple[ResolvedDrug, ...]:
        """Statin records still ongoing on the day the facts were built."""
        return tuple(d for d in self.statins if d.ongoing)

    def trial(self, therapy_class: str) -> TrialHistory | None:
        for t in self.trials:
            if t.therapy_class == therapy_class:
                return t
        return None

    def labs_in(self, group: str) -> tuple[LabResult, ...]:
        return tuple(lab for lab in self.labs if lab.group == group)


class DraftOrder(Struct, frozen=True, gc=False):
    """One draft MedicationRequest of an order-select / order-sign call, as terminology sees it."""

    reference: str  # "MedicationRequest/<id>": what a delete action names
    label: str  # what the order names (record text, for the card: escaped there)
    drugs: tuple[ResolvedDrug, ...]  # therapy-class members; empty when nothing is recognised
    selected: bool = True  # order-select: one of context.selections (or no selections given)
