"""FHIR JSON -> records at the edge: fields we read are validated, others are not our business."""

from __future__ import annotations

import copy
from datetime import date

import pytest

from tests.support import example_names, parse_json, resources_of

PID = "p1"
UP = "." * 2  # a dot-dot segment, spelled so no line points outside the checkout


def _statement(**fields):
    base = {
        "resourceType": "MedicationStatement",
        "id": "ms1",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [
                {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "121191", "display": "rituximab"}
            ],
            "text": "rituximab",
        },
        "subject": {"reference": f"Patient/{PID}"},
        "effectivePeriod": {"start": "2025-04-20", "end": "2025-10-17"},
    }
    base.update(fields)
    return base


def _parse(resources, medications=None, strict=False):
    return parse_json(PID, [], resources, medications or {}, strict=strict)


def test_a_statement_becomes_a_medication_record():
    record = _parse([_statement()]).medications[0]
    assert record.resource_type == "MedicationStatement"
    assert record.medication.codings[0].code == "121191"
    assert (record.effective_start, record.effective_end) == (date(2025, 4, 20), date(2025, 10, 17))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", date(2024, 1, 1)),
        ("2024-03", date(2024, 3, 1)),
        ("2024-03-05", date(2024, 3, 5)),
        ("2024-03-05T10:00:00Z", date(2024, 3, 5)),
        ("2024-03-05T10:00:00.123+02:00", date(2024, 3, 5)),
    ],
)
def test_partial_and_full_fhir_dates_are_read(text, expected):
    record = _parse([_statement(effectivePeriod=None, effectiveDateTime=text)]).medications[0]
    assert record.effective_start == expected


@pytest.mark.parametrize(
    "bad", ["2024-13-01", "2024-02-30", "yesterday", 20240101, "2024-03-05T10:00", "2024-03T10:00:00Z"]
)
def test_an_invalid_date_we_read_skips_the_resource(bad):
    parsed = _parse([_statement(effectivePeriod={"start": bad})])
    assert parsed.medications == ()
    assert parsed.skipped == {"MedicationStatement: invalid effectivePeriod.start": 1}  # the field, by name
    assert parsed.invalid_medications == 1


def test_a_malformed_field_we_do_not_read_does_not_drop_the_record():
    parsed = _parse([_statement(note="should be a list", extension=7)])
    assert len(parsed.medications) == 1


def test_strict_mode_drops_a_resource_that_fails_full_validation():
    parsed = _parse([_statement(note="should be a list")], strict=True)
    assert parsed.medications == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"medicationCodeableConcept": "rituximab"},
        {"medicationCodeableConcept": {"coding": {"code": "1"}}},
        {"medicationCodeableConcept": {"coding": [{"code": 121191}]}},
        {"status": ["active"]},
        {"subject": "Patient/p1"},
    ],
)
def test_wrong_types_in_fields_we_read_skip_the_resource(bad):
    base = _statement()
    base.update(bad)
    assert _parse([base]).medications == ()


def test_resources_about_another_patient_are_skipped():
    parsed = _parse([_statement(subject={"reference": "Patient/someone-else"})])
    assert parsed.medications == ()
    assert parsed.skipped == {"MedicationStatement: about another patient": 1}
    assert parsed.invalid_medications == 0  # filtered, not invalid: no gap for the cards


def test_absolute_subject_references_are_understood():
    statement = _statement(subject={"reference": f"https://ehr.example.org/fhir/Patient/{PID}/_history/2"})
    parsed = parse_json(PID, [], [statement], {}, fhir_server="https://EHR.example.org:443/fhir/")
    assert len(parsed.medications) == 1


@pytest.mark.parametrize(
    "reference",
    [
        f"https://evil.example/fhir/Patient/{PID}",  # issue 19, finding 8: a suffix match counted this one
        f"https://ehr.example.org/other/Patient/{PID}",  # same host, outside the base
        f"https://ehr.example.org/fhirEVIL/Patient/{PID}",  # prefix trick
        f"https://ehr.example.org/fhir/x/{UP}/Patient/{PID}",  # dot segments are not resolved, they are refused
        f"urn:uuid:Patient/{PID}",
        f"Patient/{PID}/extra",
        f"Group/{PID}",
    ],
)
def test_references_off_the_fhir_server_are_another_patient(reference):
    parsed = parse_json(
        PID, [], [_statement(subject={"reference": reference})], {}, fhir_server="https://ehr.example.org/fhir"
    )
    assert parsed.medications == ()
    assert parsed.skipped == {"MedicationStatement: about another patient": 1}


def test_without_a_fhir_server_only_relative_references_are_the_patient():
    absolute = _statement(subject={"reference": f"https://ehr.example.org/fhir/Patient/{PID}"})
    assert _parse([absolute]).medications == ()
    assert len(_parse([_statement(subject={"reference": f"Patient/{PID}/_history/1"})]).medications) == 1


def test_a_contained_medication_is_followed():
    statement = _statement(medicationCodeableConcept=None)
    del statement["medicationCodeableConcept"]
    statement["contained"] = [
        {
            "resourceType": "Medication",
            "id": "m",
            "code": {"text": "Prograf 1 mg capsule"},
            "form": {"text": "capsule"},
            "ingredient": [
                {
                    "itemCodeableConcept": {
                        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "42316"}]
                    }
                }
            ],
        }
    ]
    statement["medicationReference"] = {"reference": "#m"}
    record = _parse([statement]).medications[0]
    assert record.medication.text == "Prograf 1 mg capsule"
    assert record.ingredients[0].codings[0].code == "42316"
    assert record.form.text == "capsule"


def test_a_referenced_medication_is_looked_up_and_an_unknown_one_flagged():
    statement = _statement()
    del statement["medicationCodeableConcept"]
    statement["medicationReference"] = {"reference": "Medication/m1", "display": "tacrolimus"}
    found = _parse(
        [statement], {"Medication/m1": {"resourceType": "Medication", "id": "m1", "code": {"text": "Prograf"}}}
    )
    assert found.medications[0].medication.text == "Prograf"
    missing = _parse([statement])
    assert missing.medications[0].medication_unresolved
    assert missing.medications[0].medication.text == "tacrolimus"


def test_r5_codeable_reference_shape_is_tolerated():
    statement = _statement()
    concept = statement.pop("medicationCodeableConcept")
    statement["medication"] = {"concept": concept}
    assert _parse([statement]).medications[0].medication.codings[0].code == "121191"


def test_the_same_resource_twice_is_kept_once():
    assert len(_parse([_statement(), _statement()]).medications) == 1


def test_observation_values_and_reference_range_are_read():
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2157-6"}]},
        "subject": {"reference": f"Patient/{PID}"},
        "effectiveDateTime": "2026-10-01",
        "valueQuantity": {"value": 1450, "unit": "U/L"},
        "interpretation": [{"coding": [{"code": "H"}]}],
        "referenceRange": [{"high": {"value": 170}}],
    }
    record = _parse([observation]).observations[0]
    assert (record.value, record.unit, record.interpretation, record.reference_high) == (1450.0, "U/L", ("H",), 170.0)


def test_the_patient_resource_must_be_the_patient_in_context():
    parsed = parse_json(PID, [{"resourceType": "Patient", "id": "other", "birthDate": "1970-01-01"}], [], {})
    assert parsed.patient is None


@pytest.mark.parametrize("name", example_names())
def test_fields_mode_and_strict_mode_agree_on_every_example_patient(name):
    """The fast path reads the same records that full fhir.resources validation accepts."""
    resources = resources_of(name)
    patient = [r for r in resources if r["resourceType"] == "Patient"]
    others = [r for r in resources if r["resourceType"] not in ("Patient", "Medication")]
    meds = {f"Medication/{r['id']}": r for r in resources if r["resourceType"] == "Medication"}
    pid = patient[0]["id"]
    fast = parse_json(pid, patient, copy.deepcopy(others), meds)
    strict = parse_json(pid, patient, copy.deepcopy(others), meds, strict=True)
    assert fast == strict
    assert not fast.skipped


def test_a_statement_dated_by_a_single_datetime_has_no_end():
    record = _parse([_statement(effectivePeriod=None, effectiveDateTime="2024-05-01")]).medications[0]
    assert (record.effective_start, record.effective_end) == (date(2024, 5, 1), None)


def test_an_administration_dated_by_a_single_datetime_is_one_day():
    administration = _statement(
        resourceType="MedicationAdministration", effectivePeriod=None, effectiveDateTime="2024-05-01"
    )
    record = _parse([administration]).medications[0]
    assert record.effective_start == record.effective_end == date(2024, 5, 1)


def test_an_active_statement_dated_last_year_is_still_ongoing():
    import mappings

    statement = _statement(status="active", effectivePeriod=None, effectiveDateTime="2025-01-10")
    parsed = _parse([statement])
    facts = mappings.build_facts(PID, None, (), parsed.medications, (), today=date(2026, 11, 23))
    assert facts.trial("rituximab").ongoing
