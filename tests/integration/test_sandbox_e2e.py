"""End to end: example patients in a real FHIR server, the service called as an EHR would.

load -> fire with prefetch -> fire without prefetch (the service reads the
FHIR server itself with the bearer token) -> the same cards both ways.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.ehr import build_request, find_service, fire
from sandbox.fhir_server import FhirServerHandle
from sandbox.loader import LoadError, load_bundles
from sandbox.patients import ExamplePatient, list_patients
from sandbox.terminal import format_cards

from .conftest import TOKEN, Service

pytestmark = pytest.mark.integration

PATIENTS = list_patients()
_BY_ID = {p.id: p for p in PATIENTS}


def _call(
    service: Service, fhir: FhirServerHandle, patient_id: str, *, prefetch: bool, token: str = TOKEN
) -> requests.Response:
    body = build_request(service.base_url, fhir.base_url, patient_id, prefetch=prefetch, access_token=token)
    return fire(service.base_url, body)


def _comparable(cards: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a clinician sees, without per-call ids (card/suggestion uuids)."""
    return [
        (
            c.get("indicator"),
            c.get("summary"),
            c.get("detail"),
            (c.get("source") or {}).get("label"),
            c.get("selectionBehavior"),
            tuple(s.get("label") for s in c.get("suggestions") or []),
            tuple((ln.get("label"), ln.get("url")) for ln in c.get("links") or []),
        )
        for c in cards
    ]


def _ids(patients: list[ExamplePatient]) -> list[str]:
    return [p.id for p in patients]


# ------------------------------------------------------------------ loading


@pytest.mark.parametrize("patient", PATIENTS, ids=_ids(PATIENTS))
def test_each_example_bundle_loads_and_reads_back(fhir_server: FhirServerHandle, patient: ExamplePatient) -> None:
    # Loaded once by the fixture; PUT with client ids makes a second load an update.
    (result,) = load_bundles(fhir_server.base_url, [patient.path], access_token=TOKEN)
    assert result.entries == len(patient.bundle()["entry"])
    assert all(status.startswith("200") for status in result.statuses), result.statuses
    response = requests.get(
        f"{fhir_server.base_url}/Patient/{patient.id}", headers=fhir_server.auth_headers(), timeout=10
    )
    assert response.status_code == 200
    assert response.json()["id"] == patient.id


def test_the_server_validates_strictly(fhir_server: FhirServerHandle, tmp_path: Path) -> None:
    """Proof that 'it loaded' means 'it is valid R4': a bad date is refused, with the reason."""
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "id": "bad-date", "birthDate": "21/08/1979"},
                        "request": {"method": "PUT", "url": "Patient/bad-date"},
                    }
                ],
            }
        )
    )
    with pytest.raises(LoadError, match=r"HTTP 400.*Patient\.birthDate"):
        load_bundles(fhir_server.base_url, [bad], access_token=TOKEN)


# ------------------------------------------------------------------ prefetch vs fetch

_SAME_BOTH_WAYS = [pytest.param(p, id=p.id) for p in PATIENTS]


@pytest.mark.parametrize("patient", _SAME_BOTH_WAYS)
def test_same_cards_with_and_without_prefetch(
    fhir_server: FhirServerHandle, cds_service: Service, patient: ExamplePatient
) -> None:
    with_prefetch = _call(cds_service, fhir_server, patient.id, prefetch=True)
    without = _call(cds_service, fhir_server, patient.id, prefetch=False)
    assert with_prefetch.status_code == 200, with_prefetch.text[:500]
    assert without.status_code == 200, without.text[:500]
    cards = with_prefetch.json()["cards"]
    assert bool(cards) == patient.expect_cards
    assert _comparable(cards) == _comparable(without.json()["cards"])
    format_cards(with_prefetch.json())  # the terminal view copes with every real response


def test_prefetch_is_filled_from_the_server(fhir_server: FhirServerHandle, cds_service: Service) -> None:
    body = build_request(
        cds_service.base_url, fhir_server.base_url, "example-dm-001", prefetch=True, access_token=TOKEN
    )
    entry = find_service(requests.get(f"{cds_service.base_url}/cds-services", timeout=10).json())
    assert set(body["prefetch"]) == set(entry["prefetch"])
    assert body["prefetch"]["patient"]["id"] == "example-dm-001"
    assert body["prefetch"]["medicationStatements"]["total"] == 6


def test_without_prefetch_the_service_uses_the_bearer_token(
    fhir_server: FhirServerHandle, cds_service: Service
) -> None:
    """The FHIR server accepts only TOKEN: a wrong token must surface as 412, not as cards."""
    response = _call(cds_service, fhir_server, "example-dm-001", prefetch=False, token="not-the-token")
    assert response.status_code == 412
    assert set(response.json()) >= {"error", "message"}


# ------------------------------------------------------------------ special patients


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "fetch"])
def test_no_myositis_gives_no_cards(fhir_server: FhirServerHandle, cds_service: Service, prefetch: bool) -> None:
    response = _call(cds_service, fhir_server, "example-no-myositis", prefetch=prefetch)
    assert response.status_code == 200
    assert response.json()["cards"] == []


def test_unknown_patient_with_prefetch_gives_no_cards(fhir_server: FhirServerHandle, cds_service: Service) -> None:
    # The EHR's Patient read 404s, so prefetch.patient is null and every search is empty:
    # there is nothing to say, and the service says nothing.
    body = build_request(
        cds_service.base_url, fhir_server.base_url, "no-such-patient", prefetch=True, access_token=TOKEN
    )
    assert body["prefetch"]["patient"] is None
    response = fire(cds_service.base_url, body)
    assert response.status_code == 200
    assert response.json()["cards"] == []


def test_unknown_patient_without_prefetch_is_a_clear_412(fhir_server: FhirServerHandle, cds_service: Service) -> None:
    # The service's own Patient read 404s: CDS Hooks 412, in the service's JSON error shape.
    response = _call(cds_service, fhir_server, "no-such-patient", prefetch=False)
    assert response.status_code == 412
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "patient-not-found"
    assert isinstance(body["message"], str) and "no-such-patient" not in body["message"]


# ------------------------------------------------------------------ paging


def test_long_history_is_paged_and_fully_read(fhir_server: FhirServerHandle, cds_service: Service) -> None:
    first = requests.get(
        f"{fhir_server.base_url}/MedicationRequest",
        params={"patient": "example-dm-long-history"},
        headers=fhir_server.auth_headers(),
        timeout=10,
    ).json()
    # The precondition of the test: more records than one page, so paging is exercised.
    assert first["total"] == 72
    assert len(first["entry"]) < first["total"]
    assert any(link["relation"] == "next" for link in first["link"])

    for prefetch in (True, False):
        response = _call(cds_service, fhir_server, "example-dm-long-history", prefetch=prefetch)
        assert response.status_code == 200
        main = response.json()["cards"][0]
        # Methotrexate appears only in the 12 prescriptions of 2020, beyond the first page:
        # it must be listed as tried, and never offered again.
        tried, _, options = main["detail"].partition("Options not yet tried")
        assert "methotrexate" in tried.lower(), f"prefetch={prefetch}"
        assert not any("Methotrexate" in s.get("label", "") for s in main.get("suggestions") or [])
        assert not re.search(r"^\s*\d+\.\s+\**Methotrexate", options, re.MULTILINE), f"prefetch={prefetch}"
