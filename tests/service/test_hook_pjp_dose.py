"""End to end: a structured glucocorticoid dose in the prefetch reaches the PJP prompt of the cards."""

from __future__ import annotations

from typing import Any

from tests.support import assert_valid_cds_response, hook_body, patient_id_of, prefetch_from_resources, resources_of

SERVICE = "/cds-services/myositis-next-line"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
PREDNISONE = "8640"


def _structured(value: float, frequency: int = 1, period: float = 1, unit: str = "d") -> list[dict[str, Any]]:
    return [
        {
            "text": "as written by the prescriber",
            "timing": {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}},
            "doseAndRate": [
                {"doseQuantity": {"value": value, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
            ],
        }
    ]


def _reference_patient(dosage: list[dict[str, Any]], *, cyclophosphamide_tried: bool = False) -> list[dict[str, Any]]:
    """The reference patient (prednisone ongoing, dosage as free text only) with a structured prednisone dosage."""
    resources = resources_of("reference-dm")
    (statement,) = [
        r
        for r in resources
        if r["resourceType"] == "MedicationStatement"
        and r["medicationCodeableConcept"]["coding"][0]["code"] == PREDNISONE
    ]
    statement["dosage"] = dosage
    if cyclophosphamide_tried:
        resources.append(
            {
                "resourceType": "MedicationStatement",
                "id": "test-cyc",
                "status": "completed",
                "subject": {"reference": f"Patient/{patient_id_of('reference-dm')}"},
                "medicationCodeableConcept": {
                    "coding": [{"system": RX, "code": "3002", "display": "cyclophosphamide"}]
                },
                "effectivePeriod": {"start": "2020-01-10", "end": "2020-07-01"},
            }
        )
    return resources


def _pjp_lines(client, resources) -> list[tuple[str, str]]:
    response = client.post(SERVICE, json=hook_body("reference-dm", prefetch=prefetch_from_resources(resources)))
    assert response.status_code == 200
    body = response.get_json()
    assert_valid_cds_response(body)
    return [
        (card["summary"], line)
        for card in body["cards"]
        for line in card.get("detail", "").splitlines()
        if "**PJP prophylaxis" in line or ("While taking" in line and "PJP" in line)
    ]


def test_a_structured_prednisone_dose_above_10_mg_is_named_on_the_safety_card(client):
    ((summary, line),) = _pjp_lines(client, _reference_patient(_structured(20)))  # once in the response
    assert summary.startswith("Active DM")  # a "while taking" line of the main card
    assert "PJP prophylaxis (prednisone 20 mg/day recorded, above 10 mg/day)" in line
    assert "convention" not in line  # the equivalence is tagged in the data, not shown


def test_a_twice_daily_dose_is_summed_per_day(client):
    ((_, line),) = _pjp_lines(client, _reference_patient(_structured(7.5, frequency=2), cyclophosphamide_tried=True))
    assert "prednisone 15 mg/day recorded, above 10 mg/day" in line


def test_10_mg_a_day_triggers_nothing(client):
    assert _pjp_lines(client, _reference_patient(_structured(10), cyclophosphamide_tried=True)) == []


# A dose written only as text: tests/service/test_fhir_parse_dose.py (read, or "dose not recorded - check").
