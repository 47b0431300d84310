"""Helpers shared by the test suites: requests built from the example patients."""

from __future__ import annotations

import copy
import functools
import uuid
from pathlib import Path
from typing import Any

import mappings
from sandbox.patients import get_patient, list_patients
from service import offline
from service.hooks.patient_view import build_spec
from service.hooks.prefetch import READ_SCOPES
from service.offline import DEFAULT_USER_ID

PREFETCH_TYPES = {
    "conditions": "Condition",
    "medicationStatements": "MedicationStatement",
    "medicationRequests": "MedicationRequest",
    "medicationAdministrations": "MedicationAdministration",
    "observations": "Observation",
}


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


def resources_of(patient_name: str) -> list[dict[str, Any]]:
    bundle = get_patient(patient_name).bundle()
    return [copy.deepcopy(e["resource"]) for e in bundle["entry"]]


def prefetch_for(patient_name: str) -> dict[str, Any]:
    """Full prefetch, as an EHR honouring every template would send it."""
    return prefetch_from_resources(resources_of(patient_name))


def prefetch_from_resources(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Full prefetch for one patient's resources (a Patient among them), from the service's own templates."""
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    context = {"userId": DEFAULT_USER_ID, "patientId": patient["id"]}
    return offline.prefetch_from_resources(_discovery_entry(), resources, context)


@functools.cache
def _discovery_entry() -> dict[str, Any]:
    return build_spec(sorted(mappings.load_terminology().loinc)).discovery_entry()


def patient_id_of(patient_name: str) -> str:
    return get_patient(patient_name).id


def hook_body(
    patient_name: str = "reference-dm",
    *,
    prefetch: dict[str, Any] | None | bool = True,
    fhir_server: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": DEFAULT_USER_ID, "patientId": patient_id_of(patient_name)},
    }
    if prefetch is True:
        body["prefetch"] = prefetch_for(patient_name)
    elif isinstance(prefetch, dict):
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": READ_SCOPES,
            "subject": "example-ehr",
        }
    return body


def example_names() -> list[str]:
    return [p.name for p in list_patients()]


# --- CDS Hooks 2.0 card checks (spec-checklist §1, §6, §7) -------------------------------

_EMPTY = (None, "", [], {})


def assert_no_empty_optional(value: Any, path: str = "$") -> None:
    """CDS Hooks 2.0 §JSON: optional attributes without a value are omitted, never null/""/[]/{}."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "cards":
                assert isinstance(child, list), f"{path}.cards must be an array"
                for i, card in enumerate(child):
                    assert_no_empty_optional(card, f"{path}.cards[{i}]")
                continue
            if key in ("resource",):  # a FHIR resource follows FHIR's own rules (which also forbid empties)
                assert child not in _EMPTY, f"{path}.{key} is empty"
                assert_no_empty_optional(child, f"{path}.{key}")
                continue
            assert child not in _EMPTY, f"{path}.{key} is null or empty"
            assert_no_empty_optional(child, f"{path}.{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            assert_no_empty_optional(child, f"{path}[{i}]")


def assert_valid_card(card: dict[str, Any]) -> None:
    assert isinstance(card.get("uuid"), str) and card["uuid"], "card.uuid is needed for feedback"
    summary = card.get("summary")
    assert isinstance(summary, str) and 0 < len(summary) < 140, f"summary must be < 140 chars: {summary!r}"
    assert card.get("indicator") in ("info", "warning", "critical")
    source = card.get("source")
    assert isinstance(source, dict) and isinstance(source.get("label"), str) and source["label"]
    if "url" in source:
        assert source["url"].startswith(("https://", "http://"))
    if "topic" in source:
        assert source["topic"].get("code") and source["topic"].get("system")
    if "detail" in card:
        assert isinstance(card["detail"], str)
    suggestions = card.get("suggestions")
    if suggestions is not None:
        assert card.get("selectionBehavior") in ("at-most-one", "any"), "suggestions need selectionBehavior"
        recommended = [s for s in suggestions if s.get("isRecommended")]
        if card["selectionBehavior"] == "at-most-one":
            assert len(recommended) <= 1
        for s in suggestions:
            assert isinstance(s.get("label"), str) and s["label"]
            assert isinstance(s.get("uuid"), str) and s["uuid"]
            for action in s.get("actions", []):
                assert action.get("type") in ("create", "update", "delete")
                assert isinstance(action.get("description"), str) and action["description"]
                if action["type"] in ("create", "update"):
                    assert isinstance(action.get("resource"), dict) and action["resource"].get("resourceType")
    else:
        assert "selectionBehavior" not in card
    for reason in card.get("overrideReasons", []):
        assert reason.get("code") and reason.get("system") and reason.get("display")
    for link in card.get("links", []):
        assert link.get("label") and link.get("type") in ("absolute", "smart")
        assert link.get("url", "").startswith(("https://", "http://"))
        if link["type"] == "absolute":
            assert "appContext" not in link
    assert_no_empty_optional(card)


def assert_valid_cds_response(body: dict[str, Any]) -> None:
    assert set(body) <= {"cards", "systemActions"}
    assert isinstance(body["cards"], list)
    for card in body["cards"]:
        assert_valid_card(card)
    if "systemActions" in body:
        assert body["systemActions"]


def source_file(*parts: str) -> Path:
    """A file of the verified sources copied into the repository (docs/sources, see its README)."""
    return Path(__file__).resolve().parents[1].joinpath("docs", "sources", *parts)


# --- hostile medication text (preview page injection tests) ----------------------------------

HOSTILE_TEXT = "<script>alert(1)</script>"
HOSTILE_LINK = "[x](javascript:alert(1))"


def hostile_request() -> dict[str, Any]:
    """The reference patient's request with two medication records whose text tries to inject HTML."""
    body = hook_body("reference-dm")
    patient_id = body["context"]["patientId"]
    statements = body["prefetch"]["medicationStatements"]
    for n, text in enumerate((HOSTILE_TEXT, HOSTILE_LINK)):
        statements["entry"].append(
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "id": f"hostile-{n}",
                    "status": "active",
                    "subject": {"reference": f"Patient/{patient_id}"},
                    "effectivePeriod": {"start": "2026-01-01"},
                    "medicationCodeableConcept": {"text": text},
                },
                "search": {"mode": "match"},
            }
        )
    statements["total"] = len(statements["entry"])
    return body


def parse_json(
    patient_id: str,
    patients: list[dict[str, Any]],
    resources: list[dict[str, Any]],
    medications: dict[str, dict[str, Any]],
    *,
    strict: bool = False,
    fhir_server: str | None = None,
) -> Any:
    """``service.fhir_parse.parse_patient_data`` on plain JSON resources, each encoded and decoded
    on its own as ``service.gather`` does for prefetch and FHIR answers (a value that is not a
    resource object is dropped there, as it is here)."""
    import msgspec

    from service.fhir_model import decode_resource
    from service.fhir_parse import parse_patient_data

    def decoded(items: list[Any]) -> list[Any]:
        out = [decode_resource(msgspec.json.encode(r)) for r in items]
        return [r for r in out if r is not None]

    meds = {
        key: r
        for key, r in ((k, decode_resource(msgspec.json.encode(v))) for k, v in medications.items())
        if r is not None
    }
    return parse_patient_data(
        patient_id, decoded(patients), decoded(resources), meds, strict=strict, fhir_server=fhir_server
    )
