"""ORACLE ONLY - the hand-written FHIR parser the service used before issue 13, kept verbatim.

Not imported by the service (``service/fhir_parse.py`` decodes with msgspec structs now); the
property tests in ``tests/service/test_fhir_parse_oracle.py`` hold the new parser to the same
records and the same skipped resources as this one, on every example patient and on generated
hostile resources. It takes plain JSON (dicts), as the old service did. Do not edit it to make a
test pass: a difference is either a bug in the new parser or a deliberate, documented change.
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

from mappings.dosetext import MAX_TEXT as MAX_DOSAGE_TEXT
from mappings.model import (
    Coding,
    Concept,
    ConditionRecord,
    MedicationRecord,
    ObservationRecord,
    PatientRecord,
)

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


def _fhir_date(value: Any) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField("date")
    return _parse_date(value)


@lru_cache(maxsize=8192)
def _parse_date(value: str) -> date:
    # Cached: a record repeats the same few dates many times, and a date alone identifies no one.
    match = _DATE.fullmatch(value[:10])
    if match is None or (len(value) > 10 and not (match.group(3) and _DATETIME_TAIL.fullmatch(value[10:]))):
        raise InvalidField("date")
    year, month, day = int(match.group(1)), int(match.group(2) or 1), int(match.group(3) or 1)
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidField("date") from None


def _string(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(name)
    return value


def _code(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not (value.isalnum() or _CODE.fullmatch(value)):  # isalnum: the common case, fast
        raise InvalidField(name)
    return value


def _decimal(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidField(name)
    return float(value)


def _coding(value: Any) -> Coding:
    # The hottest function of the parse (several per resource): checks inlined on purpose.
    if type(value) is not dict:
        raise InvalidField("coding")
    system, code, display = value.get("system"), value.get("code"), value.get("display")
    if system is not None and (type(system) is not str or not system.strip()):
        raise InvalidField("coding.system")
    if code is not None and (type(code) is not str or not (code.isalnum() or _CODE.fullmatch(code))):
        raise InvalidField("coding.code")
    if display is not None and (type(display) is not str or not display.strip()):
        raise InvalidField("coding.display")
    return Coding(system, code, display)


def _concept(value: Any, name: str = "CodeableConcept") -> Concept | None:
    if value is None:
        return None
    if type(value) is not dict:
        raise InvalidField(name)
    codings = value.get("coding")
    if codings is None:
        parsed: tuple[Coding, ...] = ()
    elif type(codings) is list:
        parsed = tuple([_coding(c) for c in codings])
    else:
        raise InvalidField(name)
    text = value.get("text")
    if text is not None and (type(text) is not str or not text.strip()):
        raise InvalidField(f"{name}.text")
    return Concept(parsed, text)


def _status_code(concept: Any) -> str | None:
    """First code of a status CodeableConcept (clinicalStatus, verificationStatus)."""
    parsed = _concept(concept)
    if parsed is None:
        return None
    for coding in parsed.codings:
        if coding.code:
            return coding.code
    return None


def _period(value: Any) -> tuple[date | None, date | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise InvalidField("Period")
    return _fhir_date(value.get("start")), _fhir_date(value.get("end"))


def _effective(resource: dict[str, Any]) -> tuple[date | None, date | None]:
    if "effectiveDateTime" in resource:
        day = _fhir_date(resource["effectiveDateTime"])
        return day, day
    if "effectivePeriod" in resource:
        return _period(resource["effectivePeriod"])
    if "effectiveInstant" in resource:
        day = _fhir_date(resource["effectiveInstant"])
        return day, day
    return None, None


def _reference(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(name)
    return _string(value.get("reference"), f"{name}.reference")


def _is_about(resource: dict[str, Any], patient_id: str) -> bool:
    ref = _reference(resource.get("subject") or resource.get("patient"), "subject")
    if ref is None:
        raise InvalidField("subject")
    ref = ref.split("/_history", 1)[0]
    return ref == f"Patient/{patient_id}" or ref.endswith(f"/Patient/{patient_id}")


# --- resources ------------------------------------------------------------------------


def _resource_id(resource: dict[str, Any], index: int) -> str:
    rid = resource.get("id")
    if rid is None:
        return f"#{index}"
    if not isinstance(rid, str) or not rid:
        raise InvalidField("id")
    return rid


def _patient(resource: dict[str, Any]) -> PatientRecord:
    return PatientRecord(
        id=_resource_id(resource, 0),
        birth_date=_fhir_date(resource.get("birthDate")),
        gender=_code(resource.get("gender"), "gender"),
    )


def _condition(resource: dict[str, Any], index: int) -> ConditionRecord:
    code = _concept(resource.get("code"))
    if code is None:
        raise InvalidField("code")
    onset = _fhir_date(resource.get("onsetDateTime"))
    if onset is None and isinstance(resource.get("onsetPeriod"), dict):
        onset = _period(resource["onsetPeriod"])[0]
    return ConditionRecord(
        id=_resource_id(resource, index),
        code=code,
        clinical_status=_status_code(resource.get("clinicalStatus")),
        verification_status=_status_code(resource.get("verificationStatus")),
        onset=onset,
        abatement=_fhir_date(resource.get("abatementDateTime")),
        recorded=_fhir_date(resource.get("recordedDate")),
    )


def _medication_from_resource(med: dict[str, Any]) -> tuple[Concept, tuple[Concept, ...], Concept | None]:
    code = _concept(med.get("code")) or Concept()
    ingredients = []
    items = med.get("ingredient")
    if items is not None:
        if not isinstance(items, list):
            raise InvalidField("Medication.ingredient")
        for item in items:
            if not isinstance(item, dict):
                raise InvalidField("Medication.ingredient")
            # R4: itemCodeableConcept; R5: item.concept
            concept = _concept(item.get("itemCodeableConcept"))
            if concept is None and isinstance(item.get("item"), dict):
                concept = _concept(item["item"].get("concept"))
            if concept is not None:
                ingredients.append(concept)
    return code, tuple(ingredients), _concept(med.get("form"))


def _medication_of(
    resource: dict[str, Any], medications: dict[str, dict[str, Any]]
) -> tuple[Concept, tuple[Concept, ...], Concept | None, bool]:
    """The drug a statement/request/administration is about, following references."""
    concept = _concept(resource.get("medicationCodeableConcept"))
    if concept is not None:
        return concept, (), None, False
    reference = _reference(resource.get("medicationReference"), "medicationReference")
    if reference is None and isinstance(resource.get("medication"), dict):  # R5 CodeableReference
        r5 = resource["medication"]
        concept = _concept(r5.get("concept"))
        if concept is not None:
            return concept, (), None, False
        reference = _reference(r5.get("reference"), "medication.reference")
    if reference is None:
        raise InvalidField("medication")
    med: dict[str, Any] | None = None
    if reference.startswith("#"):
        contained = resource.get("contained")
        if isinstance(contained, list):
            for item in contained:
                if (
                    isinstance(item, dict)
                    and item.get("resourceType") == "Medication"
                    and item.get("id") == reference[1:]
                ):
                    med = item
                    break
    else:
        key = reference.split("/_history", 1)[0]
        key = "Medication/" + key.rsplit("Medication/", 1)[-1] if "Medication/" in key else key
        med = medications.get(key)
    text = _string(
        resource.get("medicationReference", {}).get("display")
        if isinstance(resource.get("medicationReference"), dict)
        else None,
        "medicationReference.display",
    )
    if med is None:
        return Concept((), text), (), None, True
    code, ingredients, form = _medication_from_resource(med)
    if code.text is None and not code.codings and text:
        code = Concept((), text)
    return code, ingredients, form, False


def _route(resource: dict[str, Any]) -> Concept | None:
    for key in ("dosage", "dosageInstruction"):
        dosages = resource.get(key)
        if isinstance(dosages, list) and dosages and isinstance(dosages[0], dict):
            return _concept(dosages[0].get("route"))
    dosage = resource.get("dosage")
    if isinstance(dosage, dict):  # MedicationAdministration.dosage is a single element
        return _concept(dosage.get("route"))
    return None


_UCUM = "http://unitsofmeasure.org"
_HOURS = {"h": 1, "d": 24, "wk": 168}  # periodUnit -> hours (integers: 70 mg a week is exactly 10 mg/day)


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


def _daily_dose_mg(resource: dict[str, Any]) -> float | None:
    """mg per day when the record states it unambiguously; None otherwise, never a guess.

    Reads the one Dosage of a MedicationStatement (``dosage``) or MedicationRequest
    (``dosageInstruction``): ``doseAndRate[0].doseQuantity`` in mg and ``timing.repeat``
    with a fixed ``frequency`` per ``period`` of d, h or wk. None for: more than one Dosage
    (a taper or split doses), as-needed, a dose range or several doseAndRate entries, a
    comparator, another unit, no timing, timing by code or events only, frequency or period
    ranges, specific days of the week, other period units. An Administration's dosage is one
    dose, not a daily dose: None.

    A malformed dosage also gives None rather than skipping the resource: the dose only
    enriches the record, and dropping a medication for it would hide a course of therapy.
    """
    key = {"MedicationStatement": "dosage", "MedicationRequest": "dosageInstruction"}.get(resource["resourceType"])
    dosages = resource.get(key) if key else None
    if not isinstance(dosages, list) or len(dosages) != 1 or not isinstance(dosages[0], dict):
        return None
    dosage = dosages[0]
    if dosage.get("asNeededBoolean") not in (None, False) or any(
        k in dosage for k in ("asNeededCodeableConcept", "asNeeded", "asNeededFor")
    ):
        return None
    dose_and_rate = dosage.get("doseAndRate")
    if not isinstance(dose_and_rate, list) or len(dose_and_rate) != 1 or not isinstance(dose_and_rate[0], dict):
        return None
    quantity = dose_and_rate[0].get("doseQuantity")
    if not isinstance(quantity, dict) or "comparator" in quantity or not _is_mg(quantity):
        return None
    dose = _positive_number(quantity.get("value"))
    timing = dosage.get("timing")
    if dose is None or not isinstance(timing, dict) or timing.get("event"):
        return None
    repeat = timing.get("repeat")
    if (
        not isinstance(repeat, dict)
        or repeat.get("dayOfWeek")
        or any(repeat.get(k) is not None for k in ("frequencyMax", "periodMax"))
    ):
        return None
    frequency = repeat.get("frequency")
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
        return None
    period = _positive_number(repeat.get("period"))
    unit = repeat.get("periodUnit")
    hours = _HOURS.get(unit) if isinstance(unit, str) else None
    if period is None or hours is None:
        return None
    daily = dose * frequency * 24 / (period * hours)
    return round(daily, 6) if math.isfinite(daily) else None


def _status_reason(resource: dict[str, Any]) -> str | None:
    """statusReason as plain words (Statement: a list; Request: one concept), for intolerance vs inefficacy.

    Read leniently like the dose: a malformed statusReason gives None, never skips the resource
    (skipping would hide the course itself and let the service re-suggest the drug)."""
    raw = resource.get("statusReason")
    concepts = raw if isinstance(raw, list) else [raw]
    words: list[str] = []
    for item in concepts[:5]:
        if not isinstance(item, dict):
            continue
        try:
            concept = _concept(item, "statusReason")
        except InvalidField:
            continue
        if concept is None:
            continue
        words += [w for w in (concept.text, *(c.display for c in concept.codings)) if isinstance(w, str) and w]
    text = "; ".join(words)[:200]
    return text or None


def _dosage_text(resource: dict[str, Any]) -> str | None:
    """The free text of the one Dosage of a Statement or Request, for ``mappings`` to read a dose
    from when the structure gives none (issue 15); None when the structure itself says the dose
    is not one fixed amount (several Dosages, as needed, a range or several doseAndRate entries),
    so a stale or simplified text never overrides it. Read leniently, like the structured dose,
    and never longer than the parser reads (patient text: not logged)."""
    key = {"MedicationStatement": "dosage", "MedicationRequest": "dosageInstruction"}.get(resource["resourceType"])
    dosages = resource.get(key) if key else None
    if not isinstance(dosages, list) or len(dosages) != 1 or not isinstance(dosages[0], dict):
        return None
    dosage = dosages[0]
    text = dosage.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_DOSAGE_TEXT:
        return None
    if dosage.get("asNeededBoolean") not in (None, False) or any(
        k in dosage for k in ("asNeededCodeableConcept", "asNeeded", "asNeededFor")
    ):
        return None
    dose_and_rate = dosage.get("doseAndRate")
    if dose_and_rate is not None and not (
        isinstance(dose_and_rate, list)
        and len(dose_and_rate) == 1
        and isinstance(dose_and_rate[0], dict)
        and set(dose_and_rate[0]) <= {"type", "doseQuantity"}
    ):
        return None
    return text


def _medication(resource: dict[str, Any], index: int, medications: dict[str, dict[str, Any]]) -> MedicationRecord:
    rtype = resource["resourceType"]
    med, ingredients, form, unresolved = _medication_of(resource, medications)
    start, end = _effective(resource)
    if rtype == "MedicationStatement" and "effectiveDateTime" in resource:
        # A statement's single dateTime says when use was noted, not that it stopped that day:
        # an active statement dated last year is still ongoing. (An administration's dateTime is one dose.)
        end = None
    validity_start = validity_end = None
    dispense = resource.get("dispenseRequest")
    if dispense is not None:
        if not isinstance(dispense, dict):
            raise InvalidField("dispenseRequest")
        validity_start, validity_end = _period(dispense.get("validityPeriod"))
    return MedicationRecord(
        id=_resource_id(resource, index),
        resource_type=rtype,
        status=_code(resource.get("status"), "status"),
        medication=med,
        ingredients=ingredients,
        form=form,
        route=_route(resource),
        intent=_code(resource.get("intent"), "intent"),
        effective_start=start,
        effective_end=end,
        authored_on=_fhir_date(resource.get("authoredOn")),
        validity_start=validity_start,
        validity_end=validity_end,
        date_asserted=_fhir_date(resource.get("dateAsserted")),
        medication_unresolved=unresolved,
        daily_dose_mg=_daily_dose_mg(resource),
        status_reason=_status_reason(resource),
        dosage_text=_dosage_text(resource),
    )


def _observation(resource: dict[str, Any], index: int) -> ObservationRecord:
    code = _concept(resource.get("code"))
    if code is None:
        raise InvalidField("code")
    value = unit = value_text = None
    value_codes: tuple[Coding, ...] = ()
    reference_high = None
    quantity = resource.get("valueQuantity")
    if quantity is not None:
        if not isinstance(quantity, dict):
            raise InvalidField("valueQuantity")
        value = _decimal(quantity.get("value"), "valueQuantity.value")
        unit = _string(quantity.get("unit"), "valueQuantity.unit") or _code(quantity.get("code"), "valueQuantity.code")
    if "valueString" in resource:
        value_text = _string(resource["valueString"], "valueString")
    concept_value = _concept(resource.get("valueCodeableConcept"), "valueCodeableConcept")
    if concept_value is not None:
        value_codes = concept_value.codings
        value_text = concept_value.text or next((c.display for c in concept_value.codings if c.display), None)
    interpretation: list[str] = []
    interp = resource.get("interpretation")
    if interp is not None:
        if not isinstance(interp, list):
            raise InvalidField("interpretation")
        for item in interp:
            parsed = _concept(item, "interpretation")
            if parsed:
                interpretation.extend(c.code for c in parsed.codings if c.code)
    ranges = resource.get("referenceRange")
    if isinstance(ranges, list) and ranges and isinstance(ranges[0], dict):
        high = ranges[0].get("high")
        if isinstance(high, dict):
            reference_high = _decimal(high.get("value"), "referenceRange.high")
    return ObservationRecord(
        id=_resource_id(resource, index),
        code=code,
        status=_code(resource.get("status"), "status"),
        effective=_effective(resource)[0] or _fhir_date(resource.get("issued")),
        value=value,
        unit=unit,
        value_text=value_text,
        value_codes=value_codes,
        interpretation=tuple(interpretation),
        reference_high=reference_high,
    )


# --- strict mode -------------------------------------------------------------------------


def _strict_valid(resource: dict[str, Any]) -> bool:
    from fhir.resources import get_fhir_model_class as r5_class  # imported lazily: ~0.3 s
    from fhir.resources.R4B import get_fhir_model_class as r4_class

    rtype = resource["resourceType"]
    for lookup in (r4_class, r5_class):
        try:
            lookup(rtype).model_validate(resource)
            return True
        except Exception:
            continue
    return False


# --- entry point -------------------------------------------------------------------------


_PARSERS = {
    "Condition": "conditions",
    "MedicationStatement": "medications",
    "MedicationRequest": "medications",
    "MedicationAdministration": "medications",
    "Observation": "observations",
}


def parse_patient_data(
    patient_id: str,
    patient_resources: list[dict[str, Any]],
    resources: list[dict[str, Any]],
    medications: dict[str, dict[str, Any]],
    *,
    strict: bool = False,
) -> ParsedPatientData:
    skipped: Counter[str] = Counter()
    patient: PatientRecord | None = None
    for resource in patient_resources:
        if resource.get("resourceType") != "Patient" or resource.get("id") != patient_id:
            skipped["Patient: not the patient in context"] += 1
            continue
        try:
            if strict and not _strict_valid(resource):
                raise InvalidField("fails FHIR validation")
            patient = _patient(resource)
        except InvalidField as exc:
            skipped[f"Patient: {_INVALID} {exc}"] += 1

    out: dict[str, list[Any]] = {"conditions": [], "medications": [], "observations": []}
    seen: set[tuple[str, str]] = set()
    for index, resource in enumerate(resources):
        rtype = resource.get("resourceType")
        bucket = _PARSERS.get(rtype) if isinstance(rtype, str) else None
        if bucket is None:
            skipped[f"unexpected resource type {str(rtype)[:40]}"] += 1
            continue
        try:
            if not _is_about(resource, patient_id):
                skipped[f"{rtype}: about another patient"] += 1
                continue
            if strict and not _strict_valid(resource):
                raise InvalidField("fails FHIR validation")
            if bucket == "conditions":
                record: Any = _condition(resource, index)
            elif bucket == "medications":
                record = _medication(resource, index, medications)
            else:
                record = _observation(resource, index)
        except InvalidField as exc:
            skipped[f"{rtype}: {_INVALID} {exc}"] += 1
            continue
        key = (str(rtype), record.id)
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
