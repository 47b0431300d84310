"""No PHI in logs: every example patient through every path, all log output scanned.

Captured: every log record (caplog, DEBUG, all loggers) and the exact bytes the service's JSON
handler writes (its stream is swapped for a buffer), plus the test's stdout/stderr (capfd).
Searched for: each example patient's id, names, birth date, an added identifier (MRN), free
text (medication, dosage, status reasons, condition text, notes, canaries added to the
resources), feedback userComments, FHIR access tokens and JWTs.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from flask import Flask

from service.logs import JsonFormatter
from tests.reliability.fault_server import fault_server, status
from tests.reliability.fuzz_support import FEEDBACK, SERVICE
from tests.support import PREFETCH_TYPES, example_names, hook_body, prefetch_for

BASE = "https://ehr.example.org/fhir"
_FREE_TEXT_PARENTS = {
    "dosage",
    "dosageInstruction",
    "statusReason",
    "note",
    "code",
    "reasonCode",
    "medicationCodeableConcept",
    "valueString",
    "valueCodeableConcept",
    "category",
}


def _canary(kind: str, patient: str) -> str:
    return f"PHI-{kind}-{patient}-7f3a"


def _with_phi(patient: str) -> dict[str, Any]:
    """The patient's full prefetch with an MRN, notes and canary free text added to its resources."""
    prefetch = copy.deepcopy(prefetch_for(patient))
    prefetch["patient"]["identifier"] = [{"system": "urn:oid:1.2.3.4", "value": _canary("mrn", patient)}]
    prefetch["patient"]["telecom"] = [{"system": "phone", "value": "+1-555-0100-" + patient[:4]}]
    for key in PREFETCH_TYPES:
        for entry in prefetch[key]["entry"]:
            resource = entry["resource"]
            resource["note"] = [{"text": _canary("note", patient)}]
            if resource["resourceType"] == "Condition":
                resource.setdefault("code", {})["text"] = _canary("condition", patient)
            if resource["resourceType"].startswith("Medication") and resource["resourceType"] != "Medication":
                resource["dosage"] = [{"text": _canary("dosage", patient)}]
    return prefetch


def _texts(value: Any, parent: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "text" and isinstance(child, str) and parent in _FREE_TEXT_PARENTS:
                yield child
            yield from _texts(child, key if key != "text" else parent)
    elif isinstance(value, list):
        for child in value:
            yield from _texts(child, parent)


def phi_of(patient: str) -> set[str]:
    prefetch = _with_phi(patient)
    person = prefetch["patient"]
    found = {person["id"], person["birthDate"], *(i["value"] for i in person["identifier"])}
    for name in person.get("name", []):
        found.update(name.get("given", []))
        found.add(name["family"])
        found.add(" ".join([*name.get("given", []), name["family"]]))
    for key in PREFETCH_TYPES:
        for entry in prefetch[key]["entry"]:
            found.update(_texts(entry["resource"]))
    return {s for s in found if len(s) >= 4}


class LogTrap:
    """Everything logged during a test, as text."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.json_lines = io.StringIO()

    def text(self, capfd: pytest.CaptureFixture[str]) -> str:
        out, err = capfd.readouterr()
        records = "\n".join(
            f"{r.name} {r.levelname} {r.getMessage()} {json.dumps({k: str(v) for k, v in r.__dict__.items()})}"
            for r in self.caplog.records
        )
        return "\n".join([self.json_lines.getvalue(), records, self.caplog.text, out, err])


@pytest.fixture
def trap(caplog: pytest.LogCaptureFixture) -> Iterator[LogTrap]:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    trap = LogTrap(caplog)
    logger = logging.getLogger("myositis_cds")
    ours = [h for h in logger.handlers if getattr(h, "_myositis", False)]
    extra = logging.StreamHandler(trap.json_lines)
    extra.setFormatter(JsonFormatter())
    extra.setLevel(logging.DEBUG)
    logger.addHandler(extra)
    previous = [h.setStream(trap.json_lines) for h in ours if isinstance(h, logging.StreamHandler)]
    try:
        yield trap
    finally:
        logger.removeHandler(extra)
        for handler, stream in zip(ours, previous, strict=False):
            if stream is not None:
                handler.setStream(stream)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(LOG_LEVEL="DEBUG", LOG_TRACEBACKS=True, ALLOW_INSECURE_LOCAL_FHIR=True)


def _jwt_with_phi(patient: str) -> str:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    header = b64({"alg": "ES384", "typ": "JWT", "kid": "k1", "jku": "https://attacker.example/jwks"})
    claims = b64(
        {
            "iss": "https://unknown.example",
            "sub": _canary("jwt-sub", patient),
            "aud": "x",
            "exp": 4102444800,
            "iat": 1700000000,
            "jti": _canary("jti", patient),
        }
    )
    return f"{header}.{claims}.c2lnbmF0dXJl"


def _register_fhir(mock: responses.RequestsMock, prefetch: dict[str, Any], patient_id: str) -> None:
    mock.get(f"{BASE}/Patient/{patient_id}", json=prefetch["patient"])
    for key, rtype in PREFETCH_TYPES.items():
        mock.get(re.compile(rf"{re.escape(BASE)}/{rtype}\?.*"), json=prefetch[key])
    mock.get(
        re.compile(rf"{re.escape(BASE)}/Medication/.*"),
        status=404,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-found", "diagnostics": f"no Medication for {patient_id}"}],
        },
    )


def _exercise(app: Flask, patient: str) -> set[str]:
    """Send the patient through every path; return the secrets used (tokens, comments)."""
    client = app.test_client()
    prefetch = _with_phi(patient)
    patient_id = prefetch["patient"]["id"]
    token = _canary("access-token", patient)
    jwt = _jwt_with_phi(patient)
    comment = f"{prefetch['patient']['name'][0]['family']} declined: {_canary('comment', patient)}"
    secrets = {token, jwt, jwt.split(".")[1], comment, _canary("comment", patient), _canary("jwt-sub", patient)}

    # 1. prefetch, all of it
    cards = client.post(SERVICE, json=hook_body(patient, prefetch=prefetch)).get_json()["cards"]
    # 2. no prefetch: every query fetched (mocked EHR), with another patient's data mixed in
    other = _with_phi("no-myositis" if patient != "no-myositis" else "reference-dm")
    mixed = copy.deepcopy(prefetch)
    mixed["medicationStatements"]["entry"] += other["medicationStatements"]["entry"]
    mixed["conditions"]["entry"] += other["conditions"]["entry"]
    mixed["conditions"]["entry"].append(
        {
            "resource": {
                "resourceType": "Condition",
                "id": patient_id,
                "subject": {"reference": f"Patient/{patient_id}"},
                "code": {"text": _canary("condition", patient), "coding": 5},
            }
        }
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _register_fhir(mock, mixed, patient_id)
        client.post(SERVICE, json=hook_body(patient, prefetch=False, fhir_server=BASE, token=token))
    # 3. the EHR fails with PHI in its OperationOutcome; the token is refused
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "exception", "diagnostics": f"{patient_id} {comment}"}],
        }
        mock.get(re.compile(rf"{re.escape(BASE)}/Observation\?.*"), status=500, json=outcome)
        mock.get(re.compile(rf"{re.escape(BASE)}/Condition\?.*"), status=401, json=outcome)
        body = hook_body(patient, prefetch={"patient": prefetch["patient"]}, fhir_server=BASE, token=token)
        client.post(SERVICE, json=body)
    # 4. invalid requests carrying PHI where it does not belong
    bad = hook_body(patient, prefetch=prefetch, fhir_server=BASE, token=token)
    bad["context"]["patientId"] = comment
    bad["hookInstance"] = patient_id
    bad["fhirAuthorization"]["patient"] = comment
    client.post(SERVICE, json=bad)
    client.post(SERVICE, data=json.dumps(bad).encode()[:-3] + b"\xff", content_type="application/json")
    client.post(f"/cds-services/{patient_id}", json=bad)
    # 5. feedback with a userComment, valid and invalid
    card = cards[0]["uuid"] if cards else patient_id
    item = {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-23T10:00:00Z",
        "overrideReason": {"reason": {"code": "other", "system": "https://x.example"}, "userComment": comment},
    }
    client.post(FEEDBACK, json={"feedback": [item]})
    client.post(FEEDBACK, json={"feedback": [{**item, "outcome": comment}]})
    # 6. a JWT carrying PHI-like claims (auth on) and a token in the Authorization header
    client.post(SERVICE, json=hook_body(patient, prefetch=prefetch), headers={"Authorization": f"Bearer {jwt}"})
    return secrets


@pytest.mark.parametrize("patient", example_names())
def test_no_patient_data_or_token_reaches_the_logs(
    app: Flask, make_app: Callable[..., Flask], patient: str, trap: LogTrap, capfd: pytest.CaptureFixture[str]
) -> None:
    secrets = _exercise(app, patient)
    auth_app = make_app(AUTH_ENABLED=True, TRUSTED_ISSUERS={}, LOG_LEVEL="DEBUG")
    jwt = _jwt_with_phi(patient)
    auth_app.test_client().post(SERVICE, json=hook_body(patient), headers={"Authorization": f"Bearer {jwt}"})
    auth_app.test_client().post(FEEDBACK, json={}, headers={"Authorization": f"Bearer {jwt}x"})
    logged = trap.text(capfd)
    assert "request" in logged, "the trap must have seen the access log"
    leaked = sorted(s for s in phi_of(patient) | secrets if s in logged)
    assert not leaked, f"PHI or secrets in the logs: {leaked}"


def test_no_patient_data_reaches_the_logs_on_real_sockets(
    app: Flask, trap: LogTrap, capfd: pytest.CaptureFixture[str]
) -> None:
    """Through a real loopback FHIR server, with a failing query.

    urllib3 (under requests) logs each request line, with ``?patient=<id>``, at DEBUG on its own
    logger; the service never configures that logger, so those lines are excluded here.
    """
    with fault_server() as server:
        server.faults["Observation"] = status(
            500,
            body={
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception", "diagnostics": "Dana Example 1979-08-21"}],
            },
        )
        token = _canary("access-token", "real")
        app.test_client().post(SERVICE, json=hook_body(prefetch=False, fhir_server=server.base_url, token=token))
    logged = trap.text(capfd)
    own = "\n".join(line for line in logged.splitlines() if "urllib3" not in line)
    leaked = sorted(s for s in phi_of("reference-dm") | {token} if s in own)
    assert not leaked, f"PHI or secrets in the service's logs: {leaked}"
    assert token not in logged


def test_the_trap_catches_a_planted_leak(app: Flask, trap: LogTrap, capfd: pytest.CaptureFixture[str]) -> None:
    """Guard for the test itself: a name logged through the service's logger is found."""
    logging.getLogger("myositis_cds.planted").warning("Dana Example", extra={"reason": "1979-08-21"})
    logged = trap.text(capfd)
    assert logged.count("Dana Example") >= 2  # JSON handler and caplog
    assert '"reason":"1979-08-21"' in trap.json_lines.getvalue()
