"""The EHR simulator's order hooks: ``fire --hook order-select|order-sign --order RXCUI``.

The request is checked against the CDS Hooks order-select / order-sign context (userId, patientId,
encounterId?, selections for order-select, draftOrders) and against what the HL7 CDS Hooks Sandbox sends
from its Rx View screen (tests/fixtures/hl7-sandbox-order-select.json; its README cites the sandbox's
source files: src/components/RxView/rx-view.jsx, src/reducers/medication-reducers.js,
src/retrieve-data-helpers/service-exchange.js).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner

from sandbox import commands, ehr
from service.hook_request import parse_hook_request

SERVICE = "http://127.0.0.1:9999"
FHIR = "http://127.0.0.1:9998/fhir"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "hl7-sandbox-order-select.json"
TOFACITINIB_5_MG_TABLET = "1357541"  # SCD in mappings/data/rxnorm_products.json (ingredient 1357536)
TACROLIMUS = "42316"  # ingredient (IN)
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
}
DISCOVERY = {
    "services": [
        {"id": "myositis-next-line", "hook": "patient-view", "prefetch": PREFETCH},
        {"id": "myositis-order-select", "hook": "order-select", "prefetch": PREFETCH},
        {"id": "myositis-order-sign", "hook": "order-sign", "prefetch": PREFETCH},
    ]
}


def _fhir_answers() -> None:
    responses.get(f"{FHIR}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    responses.get(f"{FHIR}/MedicationRequest", json={"resourceType": "Bundle", "type": "searchset", "total": 0})


def _medication_requests(body: dict[str, Any]) -> list[dict[str, Any]]:
    bundle = body["context"]["draftOrders"]
    assert bundle["resourceType"] == "Bundle"
    return [entry["resource"] for entry in bundle["entry"]]


def test_the_order_service_ids_are_the_ones_the_service_registers() -> None:
    assert dict(ehr.ORDER_SERVICE_IDS) == {
        "order-select": "myositis-order-select",
        "order-sign": "myositis-order-sign",
    }
    assert ehr.service_id_for("patient-view") == "myositis-next-line"
    hook_option = next(p for p in commands.fire_command.params if p.name == "hook")
    assert tuple(hook_option.type.choices) == ehr.HOOKS  # type: ignore[attr-defined]


def test_a_draft_medication_request_is_coded_with_rxnorm_and_named_from_the_project_tables() -> None:
    bundle = ehr.draft_orders("p1", [TOFACITINIB_5_MG_TABLET, TACROLIMUS], encounter_id="e7", authored_on="2026-11-23")
    assert bundle["type"] == "collection"
    first, second = (entry["resource"] for entry in bundle["entry"])
    assert first == {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": TOFACITINIB_5_MG_TABLET,
                    "display": "tofacitinib 5 MG Oral Tablet",
                }
            ],
            "text": "tofacitinib 5 MG Oral Tablet",
        },
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e7"},
        "authoredOn": "2026-11-23",
    }
    assert second["id"] == "draft-2"
    assert second["medicationCodeableConcept"]["text"] == "tacrolimus"


def test_a_code_the_tables_lack_goes_with_its_code_alone() -> None:
    concept = ehr.draft_medication_request("p1", "999999999", "draft-1", authored_on="2026-11-23")[
        "medicationCodeableConcept"
    ]
    assert concept == {"coding": [{"system": ehr.RXNORM, "code": "999999999"}]}


@responses.activate
def test_order_select_request_has_the_spec_context_and_the_patient_view_prefetch() -> None:
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    _fhir_answers()
    body = ehr.build_request(
        SERVICE,
        FHIR,
        "p1",
        prefetch=True,
        access_token="tok",
        user_id="Practitioner/u9",
        hook="order-select",
        orders=[TOFACITINIB_5_MG_TABLET, TACROLIMUS],
    )
    assert body["hook"] == "order-select"
    context = body["context"]
    assert set(context) == {"userId", "patientId", "selections", "draftOrders"}
    assert context["userId"] == "Practitioner/u9" and context["patientId"] == "p1"
    resources = _medication_requests(body)
    assert (
        context["selections"]
        == [f"MedicationRequest/{r['id']}" for r in resources]
        == [
            "MedicationRequest/draft-1",
            "MedicationRequest/draft-2",
        ]
    )
    assert all(r["status"] == "draft" and r["intent"] == "order" for r in resources)
    assert all(r["subject"] == {"reference": "Patient/p1"} for r in resources)
    assert [r["medicationCodeableConcept"]["coding"][0]["code"] for r in resources] == [
        TOFACITINIB_5_MG_TABLET,
        TACROLIMUS,
    ]
    assert body["prefetch"]["patient"] == {"resourceType": "Patient", "id": "p1"}
    assert body["prefetch"]["medications"]["total"] == 0
    assert body["fhirAuthorization"]["access_token"] == "tok"
    parse_hook_request(json.dumps(body).encode(), expected_hook="order-select", prefetch_keys=frozenset(PREFETCH))


@responses.activate
def test_order_sign_has_draft_orders_and_no_selections() -> None:
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    body = ehr.build_request(
        SERVICE,
        FHIR,
        "p1",
        prefetch=False,
        access_token="tok",
        hook="order-sign",
        orders=[TACROLIMUS],
        encounter_id="e7",
    )
    assert body["hook"] == "order-sign"
    assert set(body["context"]) == {"userId", "patientId", "encounterId", "draftOrders"}
    assert [r["encounter"] for r in _medication_requests(body)] == [{"reference": "Encounter/e7"}]


@responses.activate
def test_without_a_token_no_fhir_authorization_is_sent_nor_used_for_prefetch() -> None:
    # The HL7 sandbox on an open FHIR server (myositis-cds sandbox --no-require-token) sends no fhirAuthorization.
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    _fhir_answers()
    body = ehr.build_request(SERVICE, FHIR, "p1", prefetch=True, access_token="")
    assert "fhirAuthorization" not in body
    assert body["prefetch"]["patient"]["id"] == "p1"
    assert all("Authorization" not in c.request.headers for c in responses.calls if c.request.url.startswith(FHIR))


@pytest.mark.parametrize(
    ("hook", "orders", "message"),
    [
        ("patient-view", ["42316"], "patient-view takes no orders"),
        ("order-select", [], "needs at least one draft order"),
        ("order-review", ["42316"], "unknown hook"),
    ],
)
def test_orders_and_hooks_that_do_not_go_together(hook: str, orders: list[str], message: str) -> None:
    with pytest.raises(ehr.EhrError, match=message):
        ehr.build_request(DISCOVERY, FHIR, "p1", prefetch=False, access_token="t", hook=hook, orders=orders)


def test_a_service_registered_for_another_hook_is_refused() -> None:
    doc = {"services": [{"id": "myositis-order-select", "hook": "order-sign"}]}
    with pytest.raises(ehr.EhrError, match="is for 'order-sign', not 'order-select'"):
        ehr.build_request(doc, FHIR, "p1", prefetch=False, access_token="t", hook="order-select", orders=["42316"])


def test_the_hl7_sandbox_fixture_is_an_order_select_request_the_simulator_agrees_with() -> None:
    recorded = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert recorded["hook"] == "order-select" and "fhirAuthorization" not in recorded
    context = recorded["context"]
    assert context["patientId"] == "example-dm-001"
    (resource,) = (entry["resource"] for entry in context["draftOrders"]["entry"])
    assert context["selections"] == [f"MedicationRequest/{resource['id']}"]
    coding = resource["medicationCodeableConcept"]["coding"][0]
    assert (coding["system"], coding["code"]) == (ehr.RXNORM, TOFACITINIB_5_MG_TABLET)
    # The display the HL7 sandbox sends is the one the project's own tables give that code.
    assert (
        coding["display"]
        == ehr.draft_medication_request("example-dm-001", TOFACITINIB_5_MG_TABLET, "x", authored_on="2026-11-23")[
            "medicationCodeableConcept"
        ]["text"]
    )
    ours = ehr.build_request(
        DISCOVERY,
        recorded["fhirServer"],
        "example-dm-001",
        prefetch=False,
        access_token="",
        user_id=context["userId"],
        hook="order-select",
        orders=[TOFACITINIB_5_MG_TABLET],
    )
    assert set(ours) == set(recorded)
    assert set(ours["context"]) == set(context)
    ours_resource = _medication_requests(ours)[0]
    for field in ("resourceType", "status", "intent", "subject"):
        assert ours_resource[field] == resource[field], field
    for body in (recorded, ours):
        parse_hook_request(json.dumps(body).encode(), expected_hook="order-select", prefetch_keys=frozenset())


@responses.activate
def test_fire_posts_order_select_to_its_service_and_prints_the_cards() -> None:
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    responses.post(
        f"{SERVICE}/cds-services/myositis-order-select",
        json={"cards": [{"summary": "Screen for TB first", "indicator": "warning", "source": {"label": "L"}}]},
    )
    args = ["--patient", "p1", "--service", SERVICE, "--no-prefetch", "--token", "", "--show-request"]
    result = CliRunner().invoke(
        commands.fire_command, [*args, "--hook", "order-select", "--order", TOFACITINIB_5_MG_TABLET, "--order", "42316"]
    )
    assert result.exit_code == 0, result.output
    assert "[1/1] ! WARNING: Screen for TB first" in result.output
    sent = json.loads(responses.calls[1].request.body)
    assert sent["context"]["selections"] == ["MedicationRequest/draft-1", "MedicationRequest/draft-2"]
    assert "fhirAuthorization" not in sent


@responses.activate
def test_fire_order_sign_reports_the_service_answer() -> None:
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    responses.post(
        f"{SERVICE}/cds-services/myositis-order-sign",
        status=404,
        json={"error": "not-found", "message": "No such service."},
    )
    result = CliRunner().invoke(
        commands.fire_command,
        ["--patient", "p1", "--service", SERVICE, "--no-prefetch", "--hook", "order-sign", "--order", "42316"],
    )
    assert result.exit_code == 1 and "HTTP 404" in result.output
    assert responses.calls[1].request.url == f"{SERVICE}/cds-services/myositis-order-sign"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hook", "order-select"], "needs at least one --order RXCUI"),
        (["--order", "42316"], "--order goes with --hook order-select or order-sign"),
        (["--hook", "order-sign", "--order", "tacrolimus"], "is not an RxNorm code"),
    ],
)
def test_fire_usage_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(commands.fire_command, ["--patient", "p1", "--service", "http://127.0.0.1:9", *args])
    assert result.exit_code == 2 and message in result.output
