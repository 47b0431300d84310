"""Loader: POSTs transaction Bundles; errors name the file and carry OperationOutcome text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from sandbox.loader import LoadError, load_bundles, operation_outcome_text, wait_for_fhir
from sandbox.patients import get_patient

FHIR = "http://127.0.0.1:9998/fhir"
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "structure", "diagnostics": "bad date", "expression": ["Patient.birthDate"]}
    ],
}


def _ok(count: int) -> dict[str, object]:
    return {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [{"response": {"status": "201 Created"}}] * count,
    }


@responses.activate
def test_loads_and_sends_fhir_json_with_token() -> None:
    path = get_patient("example-ibm").path
    responses.post(FHIR, json=_ok(5))
    (result,) = load_bundles(FHIR + "/", [path], access_token="tok")
    assert result.entries == 5 and result.statuses == ("201 Created",) * 5
    sent = responses.calls[0].request
    assert sent.url == FHIR
    assert sent.headers["Content-Type"] == "application/fhir+json"
    assert sent.headers["Authorization"] == "Bearer tok"
    assert json.loads(sent.body)["type"] == "transaction"


@responses.activate
def test_operation_outcome_text_in_errors() -> None:
    responses.post(FHIR, json=OUTCOME, status=400)
    with pytest.raises(LoadError, match=r"ibm\.json: .*HTTP 400: error structure: bad date \[Patient\.birthDate\]"):
        load_bundles(FHIR, [get_patient("example-ibm").path])


@responses.activate
def test_partial_batch_failure_is_an_error() -> None:
    responses.post(
        FHIR,
        json={
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [{"response": {"status": "201 Created"}}, {"response": {"status": "422 Unprocessable Entity"}}],
        },
    )
    with pytest.raises(LoadError, match="1 entries failed: 422"):
        load_bundles(FHIR, [get_patient("example-ibm").path])


def test_bad_files(tmp_path: Path) -> None:
    not_json = tmp_path / "a.json"
    not_json.write_text("{")
    with pytest.raises(LoadError, match="a.json: not valid JSON"):
        load_bundles(FHIR, [not_json])
    not_bundle = tmp_path / "b.json"
    not_bundle.write_text(json.dumps({"resourceType": "Patient"}))
    with pytest.raises(LoadError, match="not a FHIR transaction"):
        load_bundles(FHIR, [not_bundle])
    with pytest.raises(LoadError, match="cannot read"):
        load_bundles(FHIR, [tmp_path / "missing.json"])


def test_unreachable_server() -> None:
    with pytest.raises(LoadError, match="cannot reach the FHIR server"):
        load_bundles("http://127.0.0.1:9/fhir", [get_patient("example-ibm").path], timeout=(1.0, 1.0))


def test_operation_outcome_text_ignores_other_bodies() -> None:
    assert operation_outcome_text({"resourceType": "Bundle"}) == ""
    assert operation_outcome_text(None) == ""


@responses.activate
def test_wait_for_fhir() -> None:
    responses.get(f"{FHIR}/metadata", status=503)
    responses.get(f"{FHIR}/metadata", json={"resourceType": "CapabilityStatement"})
    wait_for_fhir(FHIR, 5, interval_s=0.01)
    responses.replace(responses.GET, f"{FHIR}/metadata", status=503)
    with pytest.raises(LoadError, match="not ready after 0s"):
        wait_for_fhir(FHIR, 0, interval_s=0.01)
