"""The FHIR fallback path: what the service does when prefetch is missing, mocked with ``responses``."""

from __future__ import annotations

import json
import logging
import re
import threading

import pytest
import requests
import responses

from tests.support import PREFETCH_TYPES, hook_body, prefetch_for, resources_of, searchset

BASE = "https://ehr.example.org/fhir"
SERVICE = "/cds-services/myositis-next-line"
PATIENT = "example-dm-001"


def _register_patient(rsps: responses.RequestsMock, name: str = "reference-dm", *, skip: tuple[str, ...] = ()) -> None:
    prefetch = prefetch_for(name)
    patient_id = prefetch["patient"]["id"]
    if "patient" not in skip:
        rsps.get(f"{BASE}/Patient/{patient_id}", json=prefetch["patient"])
    for key, rtype in PREFETCH_TYPES.items():
        if key in skip:
            continue
        rsps.get(re.compile(rf"{re.escape(BASE)}/{rtype}\?patient={patient_id}(&.*)?$"), json=prefetch[key])


def _call(client, name: str = "reference-dm", token: str = "secret-token-123"):
    return client.post(SERVICE, json=hook_body(name, prefetch=False, fhir_server=BASE, token=token))


def _kinds_and_summaries(body):
    return [(c["summary"], c["indicator"]) for c in body["cards"]]


@responses.activate
def test_without_prefetch_every_template_is_fetched_with_the_bearer_token(client):
    _register_patient(responses.mock)
    response = _call(client)
    assert response.status_code == 200
    assert len(responses.calls) == 6
    for call in responses.calls:
        assert call.request.headers["Authorization"] == "Bearer secret-token-123"
        assert call.request.headers["Accept"] == "application/fhir+json"


@responses.activate
def test_fetched_data_gives_the_same_cards_as_prefetch(client):
    _register_patient(responses.mock)
    fetched = _call(client).get_json()
    prefetched = client.post(SERVICE, json=hook_body()).get_json()
    assert _kinds_and_summaries(fetched) == _kinds_and_summaries(prefetched)


@responses.activate
def test_queries_run_in_parallel(client):
    """The first three queries meet at a barrier: only queries running at the same time can pass it."""
    arrived = 0
    met: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=30)  # a sequential fetch would break it instead
    prefetch = prefetch_for("reference-dm")

    def meeting(body):
        def callback(request):
            nonlocal arrived
            with lock:
                arrived += 1
                first_three = arrived <= 3
            if first_three:
                try:
                    barrier.wait()
                    met.append(True)
                except threading.BrokenBarrierError:
                    met.append(False)
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(body)

        return callback

    responses.add_callback(responses.GET, f"{BASE}/Patient/{PATIENT}", callback=meeting(prefetch["patient"]))
    for key, rtype in PREFETCH_TYPES.items():
        responses.add_callback(
            responses.GET, re.compile(rf"{re.escape(BASE)}/{rtype}\?.*"), callback=meeting(prefetch[key])
        )
    assert _call(client).status_code == 200
    assert met == [True, True, True]


@responses.activate
def test_only_missing_keys_are_fetched(client):
    body = hook_body()
    del body["prefetch"]["observations"]
    body["fhirServer"] = BASE
    body["fhirAuthorization"] = hook_body(token="t")["fhirAuthorization"]
    prefetch = prefetch_for("reference-dm")
    responses.get(re.compile(rf"{re.escape(BASE)}/Observation\?.*"), json=prefetch["observations"])
    assert client.post(SERVICE, json=body).status_code == 200
    assert len(responses.calls) == 1


@responses.activate
def test_null_prefetch_is_not_fetched_again(client):
    body = hook_body(fhir_server=BASE, token="t")
    body["prefetch"]["medicationRequests"] = None
    assert client.post(SERVICE, json=body).status_code == 200
    assert len(responses.calls) == 0


@responses.activate
def test_operation_outcome_prefetch_is_fetched_from_the_server(client):
    body = hook_body(fhir_server=BASE, token="t")
    body["prefetch"]["conditions"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    responses.get(re.compile(rf"{re.escape(BASE)}/Condition\?.*"), json=prefetch_for("reference-dm")["conditions"])
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200 and response.get_json()["cards"]
    assert len(responses.calls) == 1


@responses.activate
def test_search_pages_are_followed(client):
    _register_patient(responses.mock, skip=("medicationStatements",))
    statements = [r for r in resources_of("reference-dm") if r["resourceType"] == "MedicationStatement"]
    page1 = searchset(statements[:3])
    page1["link"] = [{"relation": "next", "url": f"{BASE}/MedicationStatement?patient={PATIENT}&page=2"}]
    page2 = searchset(statements[3:])
    responses.get(f"{BASE}/MedicationStatement?patient={PATIENT}&page=2", json=page2)
    responses.get(f"{BASE}/MedicationStatement?patient={PATIENT}", json=page1)
    fetched = _call(client).get_json()
    prefetched = client.post(SERVICE, json=hook_body()).get_json()
    assert _kinds_and_summaries(fetched) == _kinds_and_summaries(prefetched)


@responses.activate
def test_a_next_link_that_loops_is_stopped(client):
    _register_patient(responses.mock, skip=("medicationStatements",))
    page = searchset([])
    page["link"] = [{"relation": "next", "url": f"{BASE}/MedicationStatement?patient={PATIENT}"}]
    responses.get(f"{BASE}/MedicationStatement?patient={PATIENT}", json=page)
    assert _call(client).status_code == 200
    assert sum(1 for c in responses.calls if "MedicationStatement" in c.request.url) == 1


@responses.activate
def test_a_next_link_to_another_server_is_not_followed(client):
    _register_patient(responses.mock, skip=("medicationStatements",))
    page = searchset([])
    page["link"] = [{"relation": "next", "url": "https://attacker.example/steal?page=2"}]
    responses.get(f"{BASE}/MedicationStatement?patient={PATIENT}", json=page)
    assert _call(client).status_code == 200
    assert not any("attacker" in c.request.url for c in responses.calls)


@responses.activate
def test_page_cap_is_respected(make_app):
    client = make_app(FHIR_MAX_PAGES=3).test_client()
    _register_patient(responses.mock, skip=("medicationStatements",))
    for n in range(1, 10):
        page = searchset([])
        page["link"] = [{"relation": "next", "url": f"{BASE}/MedicationStatement?patient={PATIENT}&page={n + 1}"}]
        url = f"{BASE}/MedicationStatement?patient={PATIENT}" + (f"&page={n}" if n > 1 else "")
        responses.get(url, json=page)
    assert _call(client).status_code == 200
    assert sum(1 for c in responses.calls if "MedicationStatement" in c.request.url) == 3


@pytest.mark.parametrize("status", [401, 403])
@responses.activate
def test_a_refused_token_is_412(client, status):
    _register_patient(responses.mock, skip=("conditions",))
    responses.get(
        re.compile(rf"{re.escape(BASE)}/Condition\?.*"), status=status, json={"resourceType": "OperationOutcome"}
    )
    response = _call(client)
    assert response.status_code == 412
    assert response.get_json()["error"] == "fhir-unauthorized"


@responses.activate
def test_an_unknown_patient_is_412_patient_not_found(client):
    _register_patient(responses.mock, skip=("patient",))
    responses.get(f"{BASE}/Patient/{PATIENT}", status=404, json={"resourceType": "OperationOutcome"})
    response = _call(client)
    assert response.status_code == 412
    assert response.get_json()["error"] == "patient-not-found"


@responses.activate
def test_a_timed_out_optional_search_leaves_a_stated_gap(client):
    _register_patient(responses.mock, skip=("observations",))
    responses.get(re.compile(rf"{re.escape(BASE)}/Observation\?.*"), body=requests.exceptions.ReadTimeout("slow"))
    response = _call(client)
    assert response.status_code == 200
    text = json.dumps(response.get_json())
    assert response.get_json()["cards"]
    assert "Observation" in text or "laborator" in text.lower()


@responses.activate
def test_a_timed_out_required_search_is_412(client):
    _register_patient(responses.mock, skip=("conditions",))
    responses.get(re.compile(rf"{re.escape(BASE)}/Condition\?.*"), body=requests.exceptions.ConnectTimeout("slow"))
    assert _call(client).status_code == 412


@responses.activate
def test_a_malformed_bundle_leaves_a_gap_not_a_500(client):
    _register_patient(responses.mock, skip=("medicationRequests",))
    responses.get(re.compile(rf"{re.escape(BASE)}/MedicationRequest\?.*"), body="<html>oops</html>", status=200)
    response = _call(client)
    assert response.status_code == 200


@responses.activate
def test_a_search_answering_with_a_non_bundle_leaves_a_gap(client):
    _register_patient(responses.mock, skip=("medicationRequests",))
    responses.get(re.compile(rf"{re.escape(BASE)}/MedicationRequest\?.*"), json={"resourceType": "Patient", "id": "x"})
    assert _call(client).status_code == 200


@pytest.mark.parametrize("status", [500, 502, 503])
@responses.activate
def test_a_failing_optional_search_leaves_a_gap(client, status):
    _register_patient(responses.mock, skip=("medicationAdministrations",))
    responses.get(re.compile(rf"{re.escape(BASE)}/MedicationAdministration\?.*"), status=status)
    assert _call(client).status_code == 200


@responses.activate
def test_429_with_a_short_retry_after_is_retried_once(client):
    _register_patient(responses.mock, skip=("medicationRequests",))
    url = re.compile(rf"{re.escape(BASE)}/MedicationRequest\?.*")
    responses.get(url, status=429, headers={"Retry-After": "0"})
    responses.get(url, json=searchset([]))
    assert _call(client).status_code == 200
    assert sum(1 for c in responses.calls if "MedicationRequest" in c.request.url) == 2


@responses.activate
def test_resources_about_another_patient_are_filtered_out(client):
    _register_patient(responses.mock, "reference-dm", skip=("medicationStatements",))
    other = [r for r in resources_of("no-myositis") if r["resourceType"] == "MedicationStatement"]
    own = [r for r in resources_of("reference-dm") if r["resourceType"] == "MedicationStatement"]
    responses.get(re.compile(rf"{re.escape(BASE)}/MedicationStatement\?.*"), json=searchset(own + other))
    fetched = _call(client).get_json()
    prefetched = client.post(SERVICE, json=hook_body()).get_json()
    assert _kinds_and_summaries(fetched) == _kinds_and_summaries(prefetched)


@responses.activate
def test_referenced_medications_are_read(client):
    _register_patient(responses.mock, skip=("medicationStatements",))
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms-ref",
        "status": "completed",
        "medicationReference": {"reference": "Medication/med-1"},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectivePeriod": {"start": "2025-01-01", "end": "2025-06-01"},
    }
    responses.get(re.compile(rf"{re.escape(BASE)}/MedicationStatement\?.*"), json=searchset([statement]))
    responses.get(
        f"{BASE}/Medication/med-1",
        json={
            "resourceType": "Medication",
            "id": "med-1",
            "code": {
                "coding": [
                    {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "42316", "display": "tacrolimus"}
                ]
            },
        },
    )
    assert _call(client).status_code == 200
    assert any(c.request.url.endswith("/Medication/med-1") for c in responses.calls)


@responses.activate
def test_the_access_token_never_reaches_the_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    _register_patient(responses.mock)
    _call(client, token="very-secret-token-xyz")
    assert "very-secret-token-xyz" not in caplog.text


@responses.activate
def test_medication_references_in_prefetched_statements_are_read_from_the_server(client):
    body = hook_body(fhir_server=BASE, token="t")
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms-ref",
        "status": "completed",
        "medicationReference": {"reference": "Medication/med-9"},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectivePeriod": {"start": "2025-01-01", "end": "2025-06-01"},
    }
    body["prefetch"]["medicationStatements"]["entry"].append({"resource": statement})
    responses.get(
        f"{BASE}/Medication/med-9", json={"resourceType": "Medication", "id": "med-9", "code": {"text": "Prograf"}}
    )
    assert client.post(SERVICE, json=body).status_code == 200
    assert [c.request.url for c in responses.calls] == [f"{BASE}/Medication/med-9"]


@responses.activate
def test_named_http_hosts_may_receive_the_token(make_app):
    client = make_app(HTTP_FHIR_HOSTS=["hapi"]).test_client()
    base = "http://hapi:8080/fhir"
    prefetch = prefetch_for("reference-dm")
    responses.get(f"{base}/Patient/{PATIENT}", json=prefetch["patient"])
    for key, rtype in PREFETCH_TYPES.items():
        responses.get(re.compile(rf"{re.escape(base)}/{rtype}\?.*"), json=prefetch[key])
    response = client.post(SERVICE, json=hook_body(prefetch=False, fhir_server=base, token="t"))
    assert response.status_code == 200 and response.get_json()["cards"]


def test_more_records_than_the_cap_are_cut_short_and_said(make_app):
    client = make_app(MAX_RESOURCES=3).test_client()
    response = client.post(SERVICE, json=hook_body())
    assert response.status_code == 200
    assert "only the first 3 records were read" in json.dumps(response.get_json())


def test_an_unreadable_medication_reference_makes_the_history_incomplete(client):
    body = hook_body()  # prefetch only, no fhirServer: the referenced Medication cannot be read
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms-ref",
        "status": "completed",
        "medicationReference": {"reference": "Medication/med-unknown"},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "effectivePeriod": {"start": "2023-08-01", "end": "2024-09-01"},
    }
    body["prefetch"]["medicationStatements"]["entry"].append({"resource": statement})
    main = client.post(SERVICE, json=body).get_json()["cards"][0]
    assert "(medication record incomplete)" in main["summary"]
    assert "not in the available record" in main["detail"]
    assert "could not be read" in main["detail"]
