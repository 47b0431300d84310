"""Decoded FHIR resources (``service.fhir_model``) -> plain records (``mappings.model``), at the edge.

Two validation modes (setting ``FHIR_VALIDATION``):

* ``fields`` (default) - every field we read is checked against its FHIR datatype (code,
  string, date/dateTime, decimal, Coding, CodeableConcept, Reference): the types by the msgspec
  structs as each resource is decoded, the rest (FHIR dates, lazily read fields) here. Fields we
  do not read are not looked at. A resource with a bad field we read is skipped. This keeps a
  patient's rituximab record even when an unrelated field (a note, an extension) is malformed -
  dropping it would make the service re-suggest a failed drug. One exception: the structured
  dosage (daily dose) and statusReason are read leniently - what we cannot read unambiguously,
  malformed or not, gives no value and keeps the resource.
* ``strict`` - each resource must also pass full ``fhir.resources`` validation (R4B models,
  which are R4-compatible; R5 shapes are accepted where the fields we read are the same).

Skipped resources are logged by type and reason only (the field's name): never ids or text.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import msgspec
from msgspec import UNSET

from mappings.dosetext import MAX_TEXT as MAX_DOSAGE_TEXT
from mappings.model import (
    Coding,
    Concept,
    ConditionRecord,
    MedicationRecord,
    ObservationRecord,
    PatientRecord,
)
from service import fhir_model as fm
from service.fhir_model import Fhir
from service.fhir_url import FhirBase, local_reference, valid_id

__all__ = ["ParsedPatientData", "parse_patient_data", "InvalidField"]

log = logging.getLogger("myositis_cds.parse")

_DATE = re.compile(r"([0-9]{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01]))?)?")
_DATETIME_TAIL = re.compile(
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
_CODE = re.compile(r"[^\s]+( [^\s]+)*")

_INVALID = "invalid"  # the word in a skip reason that marks a bad field


class InvalidField(ValueError):
    """A field we read does not hold its FHIR datatype."""


@dataclass(frozen=True, slots=True)
class ParsedPatientData:
    patient: PatientRecord | None
    conditions: tuple[ConditionRecord, ...]
    medications: tuple[MedicationRecord, ...]
    observations: tuple[ObservationRecord, ...]
    skipped: dict[str, int]  # reason -> count (for logs and notes; no patient data)

    @property
    def invalid_medications(self) -> int:
        """Medication records dropped for a bad field (not those about another patient)."""
        return sum(
            n for reason, n in self.skipped.items() if reason.startswith("Medication") and f": {_INVALID} " in reason
        )


# --- datatypes ------------------------------------------------------------------------


def _date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidField(name)
    day = _parse_date(value)
    if day is None:
        raise InvalidField(name)
    return day


@lru_cache(maxsize=8192)
def _parse_date(value: str) -> date | None:
    # Cached: a record repeats the same few dates many times, and a date alone identifies no one.
    match = _DATE.fullmatch(value[:10])
    if match is None or (len(value) > 10 and not (match.group(3) and _DATETIME_TAIL.fullmatch(value[10:]))):
        return None
    year, month, day = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1)
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _string(value: Any, name: str) -> str | None:
    """A FHIR string read from a JSON value the structs left untyped."""
    if value is None:
        return None
    if type(value) is not str or not value.strip():
        raise InvalidField(name)
    return value


def _code(value: Any, name: str) -> str | None:
    """A FHIR code read from a JSON value the structs left untyped (same rule as ``fhir_model.Code``)."""
    if value is None:
        return None
    if type(value) is not str or not (value.isalnum() or _CODE.fullmatch(value)):
        raise InvalidField(name)
    return value


def _decimal(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if type(value) is not int and type(value) is not float:  # bool is not a decimal
        raise InvalidField(name)
    return float(value)


def _lazy(decoder: msgspec.json.Decoder[Any], raw: msgspec.Raw, name: str) -> Any:
    """Decode a field the struct kept as bytes because it is read only sometimes; None if absent."""
    if not raw:
        return None
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        problem = fm.problem_of(exc)
        raise InvalidField(f"{name}.{problem}" if problem else name) from None


_PERIOD = msgspec.json.Decoder(fm.Period | None)
_ANY = msgspec.json.Decoder(Any)  # plain JSON, judged here (effectiveInstant: by _date)
_MEDICATION_REFERENCE = msgspec.json.Decoder(fm.MedicationReference | None)
_R5_MEDICATION = msgspec.json.Decoder(fm.R5Medication | list[Any] | str | float | bool | None)  # only an object is read

# Codings and concepts repeat across resources (the same drug, the same lab); the structs are
# hashable, so each distinct one becomes a record once. Bounded; codes and displays are terminology.
_CONCEPTS: dict[fm.CodeableConcept, Concept] = {}
_MAX_MEMO = 4096


def _concept(cc: fm.CodeableConcept | None, name: str) -> Concept | None:
    """The record of a decoded CodeableConcept, its strings and codes checked (once per distinct concept)."""
    if cc is None:
        return None
    concept = _CONCEPTS.get(cc)
    if concept is None:
        codings = []
        for c in cc.coding or ():
            codings.append(
                Coding(
                    _string(c.system, f"{name}.coding.system"),
                    _code(c.code, f"{name}.coding.code"),
                    _string(c.display, f"{name}.coding.display"),
                )
            )
        concept = Concept(tuple(codings), _string(cc.text, f"{name}.text"))
        if len(_CONCEPTS) >= _MAX_MEMO:
            _CONCEPTS.clear()
        _CONCEPTS[cc] = concept
    return concept


def _concept_of(value: Any, name: str) -> Concept | None:
    """A CodeableConcept held as a plain JSON value (inside a leniently read field), checked as the struct is."""
    if value is None:
        return None
    try:
        return _concept(msgspec.convert(value, fm.CodeableConcept), name)
    except msgspec.ValidationError:
        raise InvalidField(name) from None


def _status_code(cc: fm.CodeableConcept | None, name: str) -> str | None:
    """First code of a status CodeableConcept (clinicalStatus, verificationStatus)."""
    concept = _concept(cc, name)
    if concept is None:
        return None
    for coding in concept.codings:
        if coding.code:
            return coding.code
    return None


def _period(period: fm.Period | None, name: str) -> tuple[date | None, date | None]:
    if period is None:
        return None, None
    return _date(period.start, f"{name}.start"), _date(period.end, f"{name}.end")


def _period_of(value: Any, name: str) -> tuple[date | None, date | None]:
    """A Period held as a plain JSON object."""
    return _date(value.get("start"), f"{name}.start"), _date(value.get("end"), f"{name}.end")


def _effective(resource: fm.MedicationUse | fm.Observation) -> tuple[date | None, date | None]:
    if resource.effectiveDateTime is not UNSET:
        day = _date(resource.effectiveDateTime, "effectiveDateTime")
        return day, day
    if resource.effectivePeriod:
        return _period(_lazy(_PERIOD, resource.effectivePeriod, "effectivePeriod"), "effectivePeriod")
    if resource.effectiveInstant:
        day = _date(_lazy(_ANY, resource.effectiveInstant, "effectiveInstant"), "effectiveInstant")
        return day, day
    return None, None


def _reference(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidField(name)
    return _string(value.get("reference"), f"{name}.reference")


def _is_about(subject: Any, patient: Any, patient_id: str, base: FhirBase | None = None, own: str = "") -> bool:
    """The subject is ``Patient/<id>``, relative or an absolute URL under the ``fhirServer`` base
    (``service.fhir_url``): ``https://evil.example/fhir/Patient/<id>`` is someone else's patient.

    ``own``: ``Patient/<id>`` when ``patient_id`` is a valid id, the form nearly every record uses;
    equal to it is the answer ``local_reference`` would give, without splitting the string."""
    ref = _reference(subject or patient, "subject")
    if ref is None:
        raise InvalidField("subject")
    if own and ref == own:
        return True
    return local_reference(ref, "Patient", base) == patient_id


# --- resources ------------------------------------------------------------------------


def _patient(resource: fm.Patient) -> PatientRecord:
    return PatientRecord(
        id=resource.id, birth_date=_date(resource.birthDate, "birthDate"), gender=_code(resource.gender, "gender")
    )


def _condition(resource: fm.Condition, index: int) -> ConditionRecord:
    code = _concept(resource.code, "code")
    if code is None:
        raise InvalidField("code")
    onset = _date(resource.onsetDateTime, "onsetDateTime")
    if onset is None and type(resource.onsetPeriod) is dict:
        onset = _period_of(resource.onsetPeriod, "onsetPeriod")[0]
    return ConditionRecord(
        id=resource.id or f"#{index}",
        code=code,
        clinical_status=_status_code(resource.clinicalStatus, "clinicalStatus"),
        verification_status=_status_code(resource.verificationStatus, "verificationStatus"),
        onset=onset,
        abatement=_date(resource.abatementDateTime, "abatementDateTime"),
        recorded=_date(resource.recordedDate, "recordedDate"),
    )


def _medication_from_resource(med: Fhir) -> tuple[Concept, tuple[Concept, ...], Concept | None]:
    if med.problem is not None:
        raise InvalidField(f"Medication.{med.problem}")
    data: fm.Medication = med.data
    code = _concept(data.code, "Medication.code") or Concept()
    ingredients = []
    for item in data.ingredient or ():
        # R4: itemCodeableConcept; R5: item.concept
        concept = _concept(item.itemCodeableConcept, "Medication.ingredient.itemCodeableConcept")
        if concept is None and type(item.item) is dict:
            concept = _concept_of(item.item.get("concept"), "Medication.ingredient.item.concept")
        if concept is not None:
            ingredients.append(concept)
    return code, tuple(ingredients), _concept(data.form, "Medication.form")


def _contained_medication(resource: fm.MedicationUse, wanted: str) -> Fhir | None:
    if not resource.contained:
        return None
    contained = _ANY.decode(resource.contained)
    if type(contained) is not list:
        return None
    for item in contained:
        if type(item) is dict and item.get("resourceType") == "Medication" and item.get("id") == wanted:
            try:
                return Fhir("Medication", msgspec.convert(item, fm.Medication), b"")
            except msgspec.ValidationError as exc:
                return Fhir("Medication", None, b"", fm.problem_of(exc) or "resource")
    return None


def _medication_of(
    resource: fm.MedicationUse, medications: dict[str, Fhir]
) -> tuple[Concept, tuple[Concept, ...], Concept | None, bool]:
    """The drug a statement/request/administration is about, following references."""
    concept = _concept(resource.medicationCodeableConcept, "medicationCodeableConcept")
    if concept is not None:
        return concept, (), None, False
    med_ref: fm.MedicationReference | None = _lazy(
        _MEDICATION_REFERENCE, resource.medicationReference, "medicationReference"
    )
    reference = _string(med_ref.reference, "medicationReference.reference") if med_ref is not None else None
    if reference is None and resource.medication:  # R5 CodeableReference
        r5 = _lazy(_R5_MEDICATION, resource.medication, "medication")
        if isinstance(r5, fm.R5Medication):
            concept = _concept(r5.concept, "medication.concept")
            if concept is not None:
                return concept, (), None, False
            r5_ref = _lazy(_MEDICATION_REFERENCE, r5.reference, "medication.reference")
            reference = _string(r5_ref.reference, "medication.reference.reference") if r5_ref is not None else None
    if reference is None:
        raise InvalidField("medication")
    if reference.startswith("#"):
        med = _contained_medication(resource, reference[1:])
    else:
        key = reference.split("/_history", 1)[0]
        key = "Medication/" + key.rsplit("Medication/", 1)[-1] if "Medication/" in key else key
        med = medications.get(key)
    text = _string(med_ref.display, "medicationReference.display") if med_ref is not None else None
    if med is None:
        return Concept((), text), (), None, True
    code, ingredients, form = _medication_from_resource(med)
    if code.text is None and not code.codings and text:
        code = Concept((), text)
    return code, ingredients, form, False


def _route(resource: fm.MedicationUse) -> Concept | None:
    for dosages in (resource.dosage, resource.dosageInstruction):
        if type(dosages) is list and dosages and type(dosages[0]) is dict:
            return _concept_of(dosages[0].get("route"), "dosage.route")
    dosage = resource.dosage
    if type(dosage) is dict:  # MedicationAdministration.dosage is a single element
        return _concept_of(dosage.get("route"), "dosage.route")
    return None


_UCUM = "http://unitsofmeasure.org"
_HOURS = {"h": 1, "d": 24, "wk": 168}  # periodUnit -> hours (integers: 70 mg a week is exactly 10 mg/day)
_AS_NEEDED = ("asNeededCodeableConcept", "asNeeded", "asNeededFor")


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        return None
    return float(value)


def _is_mg(quantity: dict[str, Any]) -> bool:
    """The quantity is in milligrams: UCUM code ``mg`` (no other system), or unit ``mg`` with no code."""
    code, unit, system = quantity.get("code"), quantity.get("unit"), quantity.get("system")
    if system is not None and system != _UCUM:
        return False
    if unit is not None and (not isinstance(unit, str) or unit.strip().lower() != "mg"):
        return False  # "mg/kg", "tablet", or a display that contradicts the code
    if code is not None:
        return bool(code == "mg")
    return unit is not None


def _one_dosage(resource: fm.MedicationUse) -> dict[str, Any] | None:
    """The one Dosage of a MedicationStatement (``dosage``) or MedicationRequest (``dosageInstruction``)."""
    dosages = (
        resource.dosage
        if resource.resource_type == "MedicationStatement"
        else (resource.dosageInstruction if resource.resource_type == "MedicationRequest" else None)
    )
    if type(dosages) is not list or len(dosages) != 1 or type(dosages[0]) is not dict:
        return None
    dosage: dict[str, Any] = dosages[0]
    return dosage


def _as_needed(dosage: dict[str, Any]) -> bool:
    return dosage.get("asNeededBoolean") not in (None, False) or any(k in dosage for k in _AS_NEEDED)


def _daily_dose_mg(dosage: dict[str, Any] | None) -> float | None:
    """mg per day when the record states it unambiguously; None otherwise, never a guess.

    Reads the one Dosage: ``doseAndRate[0].doseQuantity`` in mg and ``timing.repeat`` with a
    fixed ``frequency`` per ``period`` of d, h or wk. None for: more than one Dosage (a taper or
    split doses), as-needed, a dose range or several doseAndRate entries, a comparator, another
    unit, no timing, timing by code or events only, frequency or period ranges, specific days of
    the week, other period units. An Administration's dosage is one dose, not a daily dose: None.

    A malformed dosage also gives None rather than skipping the resource: the dose only
    enriches the record, and dropping a medication for it would hide a course of therapy.
    """
    if dosage is None or _as_needed(dosage):
        return None
    dose_and_rate = dosage.get("doseAndRate")
    if type(dose_and_rate) is not list or len(dose_and_rate) != 1 or type(dose_and_rate[0]) is not dict:
        return None
    quantity = dose_and_rate[0].get("doseQuantity")
    if type(quantity) is not dict or "comparator" in quantity or not _is_mg(quantity):
        return None
    dose = _positive_number(quantity.get("value"))
    timing = dosage.get("timing")
    if dose is None or type(timing) is not dict or timing.get("event"):
        return None
    repeat = timing.get("repeat")
    if (
        type(repeat) is not dict
        or repeat.get("dayOfWeek")
        or any(repeat.get(k) is not None for k in ("frequencyMax", "periodMax"))
    ):
        return None
    frequency = repeat.get("frequency")
    if type(frequency) is not int or frequency < 1:
        return None
    period = _positive_number(repeat.get("period"))
    unit = repeat.get("periodUnit")
    hours = _HOURS.get(unit) if isinstance(unit, str) else None
    if period is None or hours is None:
        return None
    daily = dose * frequency * 24 / (period * hours)
    return round(daily, 6) if math.isfinite(daily) else None


def _status_reason(raw: Any) -> str | None:
    """statusReason as plain words (Statement: a list; Request: one concept), for intolerance vs inefficacy.

    Read leniently like the dose: a malformed statusReason gives None, never skips the resource
    (skipping would hide the course itself and let the service re-suggest the drug)."""
    if raw is None:
        return None
    concepts = raw if type(raw) is list else [raw]
    words: list[str] = []
    for item in concepts[:5]:
        if type(item) is not dict:
            continue
        try:
            concept = _concept_of(item, "statusReason")
        except InvalidField:
            continue
        if concept is None:
            continue
        words += [w for w in (concept.text, *(c.display for c in concept.codings)) if w]
    text = "; ".join(words)[:200]
    return text or None


def _dosage_text(dosage: dict[str, Any] | None) -> str | None:
    """The free text of the one Dosage of a Statement or Request, for ``mappings`` to read a dose
    from when the structure gives none (issue 15); None when the structure itself says the dose
    is not one fixed amount (several Dosages, as needed, a range or several doseAndRate entries),
    so a stale or simplified text never overrides it. Read leniently, like the structured dose,
    and never longer than the parser reads (patient text: not logged)."""
    if dosage is None:
        return None
    text = dosage.get("text")
    if type(text) is not str or not text.strip() or len(text) > MAX_DOSAGE_TEXT or _as_needed(dosage):
        return None
    dose_and_rate = dosage.get("doseAndRate")
    if dose_and_rate is not None and not (
        type(dose_and_rate) is list
        and len(dose_and_rate) == 1
        and type(dose_and_rate[0]) is dict
        and set(dose_and_rate[0]) <= {"type", "doseQuantity"}
    ):
        return None
    return text


def _medication(resource: fm.MedicationUse, index: int, medications: dict[str, Fhir]) -> MedicationRecord:
    rtype = resource.resource_type
    med, ingredients, form, unresolved = _medication_of(resource, medications)
    start, end = _effective(resource)
    if rtype == "MedicationStatement" and resource.effectiveDateTime is not UNSET:
        # A statement's single dateTime says when use was noted, not that it stopped that day:
        # an active statement dated last year is still ongoing. (An administration's dateTime is one dose.)
        end = None
    validity_start = validity_end = None
    if resource.dispenseRequest is not None:
        validity_start, validity_end = _period(
            resource.dispenseRequest.validityPeriod, "dispenseRequest.validityPeriod"
        )
    route = _route(resource)
    dosage = _one_dosage(resource)
    return MedicationRecord(
        id=resource.id or f"#{index}",
        resource_type=rtype,
        status=_code(resource.status, "status"),
        medication=med,
        ingredients=ingredients,
        form=form,
        route=route,
        intent=_code(resource.intent, "intent"),
        effective_start=start,
        effective_end=end,
        authored_on=_date(resource.authoredOn, "authoredOn"),
        validity_start=validity_start,
        validity_end=validity_end,
        date_asserted=_date(resource.dateAsserted, "dateAsserted"),
        medication_unresolved=unresolved,
        daily_dose_mg=_daily_dose_mg(dosage),
        status_reason=_status_reason(resource.statusReason),
        dosage_text=_dosage_text(dosage),
    )


def _reference_high(ranges: Any) -> float | None:
    if type(ranges) is list and ranges and type(ranges[0]) is dict:
        high = ranges[0].get("high")
        if type(high) is dict:
            return _decimal(high.get("value"), "referenceRange.high")
    return None


def _observation(resource: fm.Observation, index: int) -> ObservationRecord:
    code = _concept(resource.code, "code")
    if code is None:
        raise InvalidField("code")
    value = unit = value_text = None
    value_codes: tuple[Coding, ...] = ()
    quantity = resource.valueQuantity
    if quantity is not None:
        value = quantity.value
        unit = _string(quantity.unit, "valueQuantity.unit") or _code(quantity.code, "valueQuantity.code")
    value_text = _string(resource.valueString, "valueString")
    concept_value = _concept(resource.valueCodeableConcept, "valueCodeableConcept")
    if concept_value is not None:
        value_codes = concept_value.codings
        value_text = concept_value.text or next((c.display for c in concept_value.codings if c.display), None)
    interpretation: list[str] = []
    for item in resource.interpretation or ():
        parsed = _concept(item, "interpretation")
        if parsed is not None:
            interpretation.extend(c.code for c in parsed.codings if c.code)
    reference_high = _reference_high(resource.referenceRange)
    return ObservationRecord(
        id=resource.id or f"#{index}",
        code=code,
        status=_code(resource.status, "status"),
        effective=_effective(resource)[0] or _date(resource.issued, "issued"),
        value=value,
        unit=unit,
        value_text=value_text,
        value_codes=value_codes,
        interpretation=tuple(interpretation),
        reference_high=reference_high,
    )


# --- strict mode -------------------------------------------------------------------------


def _strict_valid(resource: Fhir) -> bool:
    from fhir.resources import get_fhir_model_class as r5_class  # imported lazily: ~0.3 s
    from fhir.resources.R4B import get_fhir_model_class as r4_class

    for lookup in (r4_class, r5_class):
        try:
            lookup(resource.resource_type).model_validate(msgspec.json.decode(resource.raw))
            return True
        except Exception:
            continue
    return False


# --- entry point -------------------------------------------------------------------------


_BUCKETS = {
    "Condition": "conditions",
    "MedicationStatement": "medications",
    "MedicationRequest": "medications",
    "MedicationAdministration": "medications",
    "Observation": "observations",
}


def parse_patient_data(
    patient_id: str,
    patient_resources: list[Fhir],
    resources: list[Fhir],
    medications: dict[str, Fhir],
    *,
    strict: bool = False,
    fhir_server: str | None = None,
) -> ParsedPatientData:
    skipped: Counter[str] = Counter()
    base = FhirBase.parse(fhir_server) if fhir_server else None
    own = f"Patient/{patient_id}" if valid_id(patient_id) else ""
    patient: PatientRecord | None = None
    for resource in patient_resources:
        if resource.resource_type != "Patient" or resource.data.id != patient_id:
            skipped["Patient: not the patient in context"] += 1
            continue
        try:
            if resource.problem is not None:
                raise InvalidField(resource.problem)
            if strict and not _strict_valid(resource):
                raise InvalidField("fails FHIR validation")
            patient = _patient(resource.data)
        except InvalidField as exc:
            skipped[f"Patient: {_INVALID} {exc}"] += 1

    out: dict[str, list[Any]] = {"conditions": [], "medications": [], "observations": []}
    seen: set[tuple[str, str]] = set()
    for index, resource in enumerate(resources):
        rtype = resource.resource_type
        bucket = _BUCKETS.get(rtype)
        if bucket is None:
            skipped[f"unexpected resource type {rtype[:40]}"] += 1
            continue
        data = resource.data
        try:
            if not _is_about(data.subject, data.patient, patient_id, base, own):
                skipped[f"{rtype}: about another patient"] += 1
                continue
            if resource.problem is not None:
                raise InvalidField(resource.problem)
            if strict and not _strict_valid(resource):
                raise InvalidField("fails FHIR validation")
            if bucket == "conditions":
                record: Any = _condition(data, index)
            elif bucket == "medications":
                record = _medication(data, index, medications)
            else:
                record = _observation(data, index)
        except InvalidField as exc:
            skipped[f"{rtype}: {_INVALID} {exc}"] += 1
            continue
        except RecursionError:  # a lazily read field nested past the interpreter's limit (FHIR answers)
            skipped[f"{rtype}: {_INVALID} nesting"] += 1
            continue
        key = (rtype, record.id)
        if key in seen:
            continue  # the same resource reached us twice (prefetch page + fetch)
        seen.add(key)
        out[bucket].append(record)

    for reason, count in skipped.items():
        log.warning("fhir resource skipped", extra={"reason": reason, "count": count})
    return ParsedPatientData(
        patient=patient,
        conditions=tuple(out["conditions"]),
        medications=tuple(out["medications"]),
        observations=tuple(out["observations"]),
        skipped=dict(skipped),
    )
