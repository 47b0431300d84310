"""FHIR faults against a real loopback server: every hook call ends with honest cards or 412.

The server (``fault_server``) speaks real HTTP on 127.0.0.1, so time-outs, cut connections and
slow bodies happen on real sockets. Tests never time the service: each stalling fault lasts well
past the hook deadline, so an answer that states the gap proves the deadline cut the wait (a
service that waited would have had the data and stated no gap). Contract (README): the required key (conditions) failing is
412 JSON; an optional key failing leaves a stated gap in the cards ("Not available from the EHR: ...").
Mocked faults already covered by tests/service/test_fhir_fallback.py are not repeated here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.reliability.fault_server import (
    Fault,
    closed_port,
    cut_mid_body,
    drip,
    endless_next,
    fault_server,
    headers_then_stall,
    invalid_json,
    next_loop,
    operation_outcome,
    serve_patient,
    sleep_then_answer,
    status,
    too_many_then_ok,
)
from tests.reliability.fuzz_support import SERVICE, assert_error_shape
from tests.support import PREFETCH_TYPES, assert_valid_cds_response, hook_body, prefetch_for

# Healthy answers from the loopback server take ~0.1 s; READ_TIMEOUT_S and DEADLINE_S leave a loaded
# machine a wide margin, and every stalling fault outlasts both by several seconds.
READ_TIMEOUT_S = 2.0
DEADLINE_S = 4.0
STALL_S = 10.0
TOKEN = "fault-test-token"
KEY_OF = {rtype: key for key, rtype in PREFETCH_TYPES.items()} | {"Patient": "patient"}


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        ALLOW_INSECURE_LOCAL_FHIR=True,
        FHIR_CONNECT_TIMEOUT_S=READ_TIMEOUT_S,
        FHIR_READ_TIMEOUT_S=READ_TIMEOUT_S,
        FHIR_DEADLINE_S=DEADLINE_S,
        FHIR_MAX_PAGES=4,
    )


def _call(
    client: FlaskClient, base_url: str, patient: str = "reference-dm", prefetch: dict[str, Any] | None = None
) -> Any:
    body = hook_body(patient, prefetch=prefetch if prefetch is not None else False, fhir_server=base_url, token=TOKEN)
    return client.post(SERVICE, json=body)


def _summaries(body: dict[str, Any]) -> list[str]:
    return [c["summary"] for c in body["cards"]]


def _gaps_text(body: dict[str, Any]) -> str:
    return "\n".join(c.get("detail", "") for c in body["cards"])


def _assert_cards_with_gap(response: Any, resource_type: str) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert_valid_cds_response(body)
    assert body["cards"], "the cards that can honestly be made must still be made"
    text = _gaps_text(body)
    assert "Not available from the EHR" in text, "a failed query must be stated in the cards"
    assert f"{resource_type} (" in text, f"the gap must name {resource_type}"
    return body


def _assert_412(response: Any) -> None:
    assert response.status_code == 412, response.get_data(as_text=True)[:300]
    assert_error_shape(response)


FAULTS: dict[str, Callable[[], Fault]] = {  # factories: a fault may keep state (a counter) per test
    "sleeps past the read timeout": lambda: sleep_then_answer(STALL_S),
    "sends headers then stalls": lambda: headers_then_stall(STALL_S),
    "closes the connection mid-body": lambda: cut_mid_body,
    "answers 500": lambda: status(500),
    "answers 503 with Retry-After": lambda: status(503, {"Retry-After": "1"}),
    "answers 429 with a long Retry-After": lambda: status(429, {"Retry-After": "3600"}),
    "answers 429 twice with a short Retry-After": lambda: too_many_then_ok("0.1", failures=2),
    "answers 429 with an HTTP-date Retry-After": lambda: status(429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
    "answers invalid JSON": lambda: invalid_json,
    "answers an OperationOutcome with 200": lambda: operation_outcome,
    "answers an OperationOutcome with 400": lambda: status(400),
    "answers 404": lambda: status(404),
}


def test_a_healthy_loopback_server_gives_the_prefetch_cards(app: Flask) -> None:
    """Baseline for the fault tests: the server works, the token is sent, the cards match prefetch."""
    client = app.test_client()
    with fault_server() as server:
        response = _call(client, server.base_url)
    assert response.status_code == 200
    assert _summaries(response.get_json()) == _summaries(client.post(SERVICE, json=hook_body()).get_json())
    assert "Not available from the EHR" not in _gaps_text(response.get_json())
    assert server.calls and all(c.authorization == f"Bearer {TOKEN}" for c in server.calls)


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
@pytest.mark.parametrize("resource_type", ["MedicationStatement", "Observation"])
def test_a_failing_optional_query_leaves_a_stated_gap(app: Flask, fault: str, resource_type: str) -> None:
    with fault_server() as server:
        server.faults[resource_type] = FAULTS[fault]()
        response = _call(app.test_client(), server.base_url)
    _assert_cards_with_gap(response, resource_type)


@pytest.mark.parametrize("fault", list(FAULTS), ids=list(FAULTS))
def test_a_failing_conditions_query_is_412(app: Flask, fault: str) -> None:
    with fault_server() as server:
        server.faults["Condition"] = FAULTS[fault]()
        response = _call(app.test_client(), server.base_url)
    _assert_412(response)


@pytest.mark.parametrize(
    "fault", ["answers 500", "sleeps past the read timeout", "answers invalid JSON", "closes the connection mid-body"]
)
def test_a_failing_patient_read_leaves_a_gap(app: Flask, fault: str) -> None:
    with fault_server() as server:
        server.faults["Patient"] = FAULTS[fault]()
        response = _call(app.test_client(), server.base_url)
    _assert_cards_with_gap(response, "Patient")


def test_a_slowly_dripped_body_is_cut_off_at_the_deadline(app: Flask) -> None:
    """Each read is quick but the whole answer takes longer than the deadline: a gap."""
    with fault_server() as server:
        server.faults["Observation"] = drip(0.05, STALL_S)
        response = _call(app.test_client(), server.base_url)
    _assert_cards_with_gap(response, "Observation")


def test_every_query_failing_at_once_with_conditions_prefetched_gives_cards_with_every_gap(app: Flask) -> None:
    with fault_server() as server:
        for rtype in ("Patient", "MedicationStatement", "MedicationRequest", "MedicationAdministration", "Observation"):
            server.faults[rtype] = sleep_then_answer(STALL_S)
        prefetch = {"conditions": prefetch_for("reference-dm")["conditions"]}
        response = _call(app.test_client(), server.base_url, prefetch=prefetch)
    body = _assert_cards_with_gap(response, "Observation")
    for rtype in ("MedicationStatement", "MedicationRequest", "MedicationAdministration"):
        assert f"{rtype} (" in _gaps_text(body)


def test_a_short_retry_after_is_honoured_once_and_the_data_used(app: Flask) -> None:
    """The fault server answers 429 again to a retry that comes before Retry-After has passed."""
    with fault_server() as server:
        server.faults["Observation"] = too_many_then_ok("0.2", failures=1)
        response = _call(app.test_client(), server.base_url)
        assert server.count("Observation") == 2
    assert response.status_code == 200
    assert "Not available from the EHR" not in _gaps_text(response.get_json())


@pytest.mark.parametrize("pages", [1, 2, 3])
def test_next_links_that_cycle_stop_without_a_gap(app: Flask, pages: int) -> None:
    with fault_server() as server:
        server.faults["MedicationStatement"] = next_loop(pages)
        response = _call(app.test_client(), server.base_url)
        assert server.count("MedicationStatement") <= pages + 1  # the first URL, then each page once
    assert response.status_code == 200
    assert_valid_cds_response(response.get_json())


def test_endless_next_links_stop_at_the_page_cap_with_a_gap(app: Flask) -> None:
    with fault_server() as server:
        server.faults["MedicationRequest"] = endless_next
        response = _call(app.test_client(), server.base_url)
        assert server.count("MedicationRequest") == 4  # FHIR_MAX_PAGES
    _assert_cards_with_gap(response, "MedicationRequest")


def test_another_patients_conditions_are_filtered_out_and_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """Context is the RA patient; the server answers with the DM patient's conditions: no DM cards."""
    caplog.set_level(logging.INFO, logger="myositis_cds")
    with fault_server("no-myositis") as server:
        server.faults["Condition"] = serve_patient("reference-dm", "conditions")
        server.faults["MedicationStatement"] = serve_patient("reference-dm", "medicationStatements")
        response = _call(app.test_client(), server.base_url, patient="no-myositis")
    assert response.status_code == 200
    assert response.get_json()["cards"] == []
    skipped = [r for r in caplog.records if getattr(r, "reason", "").endswith("about another patient")]
    assert {r.reason for r in skipped} >= {
        "Condition: about another patient",
        "MedicationStatement: about another patient",
    }


def test_connection_refused_on_a_required_query_is_412(app: Flask) -> None:
    response = _call(app.test_client(), f"http://127.0.0.1:{closed_port()}/fhir")
    _assert_412(response)


def test_connection_refused_on_optional_queries_gives_cards_with_gaps(app: Flask) -> None:
    prefetch = {"conditions": prefetch_for("reference-dm")["conditions"]}
    response = _call(app.test_client(), f"http://127.0.0.1:{closed_port()}/fhir", prefetch=prefetch)
    body = _assert_cards_with_gap(response, "MedicationStatement")
    assert "could not be reached" in _gaps_text(body)


def test_a_server_that_stops_mid_run_is_refused_not_hung(app: Flask) -> None:
    client = app.test_client()
    with fault_server() as server:
        first = _call(client, server.base_url)
        base_url = server.base_url
    assert first.status_code == 200
    second = _call(client, base_url)  # pooled keep-alive connections now point at a closed port
    _assert_412(second)


def test_a_drip_fed_server_does_not_starve_the_next_calls(make_app: Callable[..., Flask]) -> None:
    """Worker threads stuck reading a slow body must not make later calls (to a healthy server) fail.

    The read time-out bounds each socket read, not a whole body; the pool is per process and
    shared by every hook call, so a thread still reading after the deadline is a worker lost.
    """
    app = make_app(
        ALLOW_INSECURE_LOCAL_FHIR=True,
        FHIR_CONNECT_TIMEOUT_S=READ_TIMEOUT_S,
        FHIR_READ_TIMEOUT_S=READ_TIMEOUT_S,
        FHIR_DEADLINE_S=DEADLINE_S,
        FHIR_MAX_WORKERS=4,
    )
    client = app.test_client()
    with fault_server() as slow, fault_server() as healthy:
        for rtype in (
            "Patient",
            "Condition",
            "MedicationStatement",
            "MedicationRequest",
            "MedicationAdministration",
            "Observation",
        ):
            slow.faults[rtype] = drip(0.05, 3 * STALL_S)
        _call(client, slow.base_url)
        response = _call(client, healthy.base_url)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        # With 4 workers and 6 readers dripping for far longer than the deadline, the healthy call's
        # queries would queue past its own deadline and be stated as gaps: no gap means the stuck
        # readers were let go.
        assert "Not available from the EHR" not in _gaps_text(response.get_json()), _gaps_text(response.get_json())


def test_fault_server_answers_are_valid_json_when_unfaulted() -> None:
    """Guard for the fixture itself: the normal answers are the example patient's Bundles."""
    with fault_server() as server:
        import requests

        session = requests.Session()
        session.trust_env = False
        try:
            bundle = session.get(f"{server.base_url}/Condition?patient=example-dm-001", timeout=5).json()
        finally:
            session.close()
    assert bundle == json.loads(json.dumps(prefetch_for("reference-dm")["conditions"]))


@pytest.mark.integration
def test_the_embedded_fhir_server_stopped_mid_run_gives_412_then_gaps(make_app: Callable[..., Flask]) -> None:
    """sekmet-fhir answers, then is stopped: the next calls get connection refused, not a hang."""
    from sandbox.fhir_server import FhirServerError, embedded_fhir_server, ensure_installed
    from sandbox.loader import load_bundles
    from sandbox.patients import get_patient
    from tests.integration.conftest import TOKEN as SANDBOX_TOKEN
    from tests.integration.conftest import _unavailable

    try:
        ensure_installed()
    except FhirServerError as exc:
        _unavailable(str(exc))
    app = make_app(
        ALLOW_INSECURE_LOCAL_FHIR=True, FHIR_DEADLINE_S=10.0, FHIR_CONNECT_TIMEOUT_S=2.0, FHIR_READ_TIMEOUT_S=5.0
    )
    client = app.test_client()

    def call(base_url: str, prefetch: dict[str, Any] | None = None) -> Any:
        body = hook_body(
            prefetch=prefetch if prefetch is not None else False, fhir_server=base_url, token=SANDBOX_TOKEN
        )
        return client.post(SERVICE, json=body)

    with embedded_fhir_server(bearer_token=SANDBOX_TOKEN) as handle:
        load_bundles(handle.base_url, [get_patient("reference-dm").path], access_token=SANDBOX_TOKEN)
        alive = call(handle.base_url)
        base_url = handle.base_url
    assert alive.status_code == 200 and alive.get_json()["cards"]
    assert "Not available from the EHR" not in _gaps_text(alive.get_json())

    _assert_412(call(base_url))  # conditions required: refused -> 412
    partial = call(base_url, prefetch={"conditions": prefetch_for("reference-dm")["conditions"]})
    body = _assert_cards_with_gap(partial, "Observation")
    assert "could not be reached" in _gaps_text(body)
