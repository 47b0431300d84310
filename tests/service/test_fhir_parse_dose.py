"""Daily dose at the edge: read only when the structured dosage states it unambiguously, never guessed."""

from __future__ import annotations

import copy

import pytest

from tests.support import parse_json

PID = "p1"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def _dose(value=20, unit="mg", code="mg", system=UCUM):
    quantity = {"value": value, "unit": unit, "system": system, "code": code}
    return {key: v for key, v in quantity.items() if v is not None}


def _dosage(dose=None, frequency=1, period=1, period_unit="d", **extra):
    repeat = {"frequency": frequency, "period": period, "periodUnit": period_unit}
    dosage = {
        "text": "as written by the prescriber",
        "timing": {"repeat": {k: v for k, v in repeat.items() if v is not None}},
        "doseAndRate": [{"doseQuantity": dose or _dose()}],
    }
    dosage.update(extra)
    return dosage


def _resource(rtype="MedicationStatement", dosages=None, **fields):
    resource = {
        "resourceType": rtype,
        "id": "m1",
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": "8640", "display": "prednisone"}]},
        "subject": {"reference": f"Patient/{PID}"},
    }
    if rtype == "MedicationRequest":
        resource.update(intent="order", authoredOn="2026-10-01")
        if dosages is not None:
            resource["dosageInstruction"] = dosages
    else:
        resource["effectivePeriod"] = {"start": "2026-10-01"}
        if dosages is not None:
            resource["dosage"] = dosages
    resource.update(fields)
    return resource


def _read(resource, strict=False):
    parsed = parse_json(PID, [], [resource], {}, strict=strict)
    assert len(parsed.medications) == 1, parsed.skipped  # a dose never costs us the record
    return parsed.medications[0].daily_dose_mg


@pytest.mark.parametrize(
    ("dosage", "expected"),
    [
        (_dosage(), 20.0),  # 20 mg once a day
        (_dosage(_dose(7.5)), 7.5),
        (_dosage(_dose(10), frequency=2), 20.0),  # 10 mg twice a day
        (_dosage(_dose(5), frequency=1, period=8, period_unit="h"), 15.0),  # 5 mg every 8 hours
        (_dosage(_dose(40), frequency=1, period=2, period_unit="d"), 20.0),  # 40 mg every other day
        (_dosage(_dose(70), frequency=1, period=1, period_unit="wk"), 10.0),  # exactly 10, not 10.000000001
        (_dosage(_dose(code=None, system=None)), 20.0),  # unit "mg" alone
        (_dosage(_dose(unit=None)), 20.0),  # UCUM code alone
        (_dosage(asNeededBoolean=False), 20.0),
    ],
)
def test_an_unambiguous_dose_is_read_as_mg_per_day(dosage, expected):
    assert _read(_resource(dosages=[dosage])) == expected


def test_a_request_reads_its_dosage_instruction():
    assert _read(_resource("MedicationRequest", dosages=[_dosage(_dose(12.5))])) == 12.5


AMBIGUOUS = {
    "no dosage": None,
    "text only": [{"text": "20 mg orally once daily"}],
    "two dosages (a taper or split doses)": [_dosage(), _dosage(_dose(5))],
    "as needed": [_dosage(asNeededBoolean=True)],
    "as needed for a reason": [_dosage(asNeededCodeableConcept={"text": "pain"})],
    "dose range": [{**_dosage(), "doseAndRate": [{"doseRange": {"low": _dose(10), "high": _dose(20)}}]}],
    "two doseAndRate entries": [{**_dosage(), "doseAndRate": [{"doseQuantity": _dose()}, {"doseQuantity": _dose(5)}]}],
    "comparator": [_dosage({**_dose(), "comparator": "<"})],
    "grams": [_dosage(_dose(unit="g", code="g"))],
    "mg/kg": [_dosage(_dose(unit="mg/kg", code="mg/kg"))],
    "tablets": [_dosage(_dose(2, unit="tablet", code=None, system=None))],
    "unit contradicts code": [_dosage(_dose(unit="mg/kg", code="mg"))],
    "non-UCUM system": [_dosage(_dose(system="http://snomed.info/sct", code="258684004"))],
    "no unit at all": [_dosage({"value": 20})],
    "no value": [_dosage({"unit": "mg", "system": UCUM, "code": "mg"})],
    "zero": [_dosage(_dose(0))],
    "no timing": [{k: v for k, v in _dosage().items() if k != "timing"}],
    "timing code only": [{**_dosage(), "timing": {"code": {"text": "QD"}}}],
    "timing events": [
        {**_dosage(), "timing": {"event": ["2026-10-01"], "repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
    ],
    "no frequency": [_dosage(frequency=None)],
    "frequency range": [
        {**_dosage(), "timing": {"repeat": {"frequency": 1, "frequencyMax": 2, "period": 1, "periodUnit": "d"}}}
    ],
    "period range": [
        {**_dosage(), "timing": {"repeat": {"frequency": 1, "period": 1, "periodMax": 2, "periodUnit": "d"}}}
    ],
    "days of the week": [
        {**_dosage(), "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk", "dayOfWeek": ["mon"]}}}
    ],
    "per month": [_dosage(period_unit="mo")],
    "no period unit": [_dosage(period_unit=None)],
}


@pytest.mark.parametrize("dosages", list(AMBIGUOUS.values()), ids=list(AMBIGUOUS))
def test_anything_ambiguous_gives_no_dose(dosages):
    assert _read(_resource(dosages=dosages)) is None


@pytest.mark.parametrize(
    "dosages",
    [
        "20 mg daily",
        [7],
        [{"doseAndRate": {"doseQuantity": _dose()}}],
        [_dosage(_dose("20"))],
        [_dosage(_dose(True))],
        [_dosage(_dose(float("inf")))],
        [_dosage(_dose(float("nan")))],
        [_dosage(_dose(1e308), frequency=10**9)],
        [_dosage(frequency=1.5)],
        [_dosage(frequency=True)],
        [_dosage(period="1")],
    ],
)
def test_a_malformed_dosage_gives_no_dose_and_keeps_the_record(dosages):
    assert _read(_resource(dosages=dosages)) is None


def test_an_administration_dose_is_one_dose_not_a_daily_dose():
    administration = _resource(
        "MedicationAdministration", status="completed", dosage={"dose": _dose(1000), "route": {"text": "intravenous"}}
    )
    assert _read(administration) is None


def test_fields_mode_and_strict_mode_read_the_same_dose():
    for resource in (
        _resource(dosages=[_dosage(_dose(12.5), frequency=2)]),
        _resource("MedicationRequest", dosages=[_dosage(_dose(5), period=8, period_unit="h")]),
    ):
        fast = parse_json(PID, [], [copy.deepcopy(resource)], {})
        strict = parse_json(PID, [], [copy.deepcopy(resource)], {}, strict=True)
        assert fast == strict and fast.medications[0].daily_dose_mg in (25.0, 15.0)


# --- the Dosage text, carried for mappings to read when the structure gives no dose (issue 15)


def _text(resource, strict=False):
    parsed = parse_json(PID, [], [resource], {}, strict=strict)
    assert len(parsed.medications) == 1, parsed.skipped
    return parsed.medications[0].dosage_text


@pytest.mark.parametrize("rtype", ["MedicationStatement", "MedicationRequest"])
def test_the_one_dosages_text_is_carried(rtype):
    assert _text(_resource(rtype, dosages=[{"text": "60 mg orally once daily"}])) == "60 mg orally once daily"
    assert _text(_resource(rtype, dosages=[_dosage()])) == "as written by the prescriber"


NO_TEXT = {
    "no dosage": None,
    "no text": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
    "two dosages (a taper)": [{"text": "60 mg daily"}, {"text": "50 mg daily"}],
    "as needed": [{"text": "20 mg daily", "asNeededBoolean": True}],
    "as needed for a reason": [{"text": "20 mg daily", "asNeededCodeableConcept": {"text": "flare"}}],
    "a structured range": [
        {"text": "20 mg daily", "doseAndRate": [{"doseRange": {"low": _dose(10), "high": _dose(20)}}]}
    ],
    "two doseAndRate entries": [
        {"text": "20 mg daily", "doseAndRate": [{"doseQuantity": _dose()}, {"doseQuantity": _dose(5)}]}
    ],
    "text not a string": [{"text": 60}],
    "blank text": [{"text": "   "}],
    "text longer than a sig": [{"text": "20 mg daily " + "x" * 300}],
    "dosage not a list": {"text": "20 mg daily"},
}


@pytest.mark.parametrize("dosages", list(NO_TEXT.values()), ids=list(NO_TEXT))
def test_no_text_when_the_structure_says_the_dose_is_not_one_amount(dosages):
    assert _text(_resource(dosages=dosages)) is None


def test_an_administrations_text_is_not_carried():
    administration = _resource(
        "MedicationAdministration", status="completed", dosage={"text": "1000 mg daily", "dose": _dose(1000)}
    )
    assert _text(administration) is None


def test_fields_and_strict_mode_carry_the_same_text():
    resource = _resource(dosages=[{"text": "20mg bd"}])
    assert _text(copy.deepcopy(resource)) == _text(copy.deepcopy(resource), strict=True) == "20mg bd"


def test_the_text_dose_reaches_the_facts_end_to_end():
    from datetime import date

    from mappings import build_facts

    parsed = parse_json(PID, [], [_resource(dosages=[{"text": "60 mg orally once daily"}])], {})
    facts = build_facts(PID, None, [], parsed.medications, [], today=date(2026, 12, 1))
    (drug,) = facts.trials[0].drugs
    assert (drug.ingredient, drug.daily_dose_mg, drug.dose_source) == ("prednisone", 60.0, "text")


def test_a_free_text_prednisone_dose_reaches_the_pjp_prompt(client):
    """Issue 15's patient: prednisone "60 mg orally once daily" as text only now names the dose on the card."""
    from tests.support import hook_body, prefetch_from_resources, resources_of

    def pjp_lines(text: str) -> list[str]:
        resources = resources_of("reference-dm")
        (statement,) = [
            r
            for r in resources
            if r["resourceType"] == "MedicationStatement"
            and r["medicationCodeableConcept"]["coding"][0]["code"] == "8640"
        ]
        statement["dosage"] = [{"text": text}]
        response = client.post(
            "/cds-services/myositis-next-line",
            json=hook_body("reference-dm", prefetch=prefetch_from_resources(resources)),
        )
        assert response.status_code == 200
        return [
            line
            for card in response.get_json()["cards"]
            for line in card.get("detail", "").splitlines()
            if "**PJP prophylaxis" in line or ("While taking" in line and "PJP" in line)
        ]

    (line,) = pjp_lines("60 mg orally once daily")
    assert "prednisone 60 mg/day recorded, above 10 mg/day" in line
    (line,) = pjp_lines("1 mg/kg orally once daily")  # weight-based: unknown, so no dose is claimed
    assert "prednisone ongoing, dose not recorded - check" in line
