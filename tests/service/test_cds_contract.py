"""CDS Hooks 2.0 contract: one test per rule of the spec checklist that binds a patient-view service.

Rule numbers refer to docs/sources/cds-hooks/spec-checklist.md.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import orjson
import pytest

from service.storage import get_storage
from tests.support import assert_no_empty_optional, assert_valid_cds_response, hook_body

SERVICE = "/cds-services/myositis-next-line"
TOKEN = re.compile(r"\{\{([^}]*)\}\}")


def post(client, body, path=SERVICE):
    return client.post(path, json=body)


# --- §0 patient-view hook ---------------------------------------------------------------


def test_rule01_discovery_declares_patient_view_hook(client):
    service = client.get("/cds-services").get_json()["services"][0]
    assert service["hook"] == "patient-view"


@pytest.mark.parametrize("user_id", ["Practitioner/a", "PractitionerRole/b", "Patient/c", "RelatedPerson/d"])
def test_rule01_user_id_may_be_any_allowed_resource_type(client, user_id):
    body = hook_body()
    body["context"]["userId"] = user_id
    assert post(client, body).status_code == 200


def test_rule01_encounter_id_is_optional_and_accepted(client):
    body = hook_body()
    body["context"]["encounterId"] = "enc-1"
    assert post(client, body).status_code == 200


# --- §1 JSON ------------------------------------------------------------------------------


def test_rule03_responses_are_json(client):
    for response in (client.get("/cds-services"), post(client, hook_body()), post(client, {})):
        assert response.mimetype == "application/json"


def test_rule04_optional_fields_never_null_or_empty(client):
    assert_no_empty_optional(client.get("/cds-services").get_json())
    assert_no_empty_optional(post(client, hook_body()).get_json())


def test_rule05_prefetch_key_may_be_null(client):
    body = hook_body()
    body["prefetch"]["observations"] = None
    assert post(client, body).status_code == 200


# --- §2 discovery -----------------------------------------------------------------------------


def test_rule06_discovery_is_available_at_cds_services(client):
    assert client.get("/cds-services").status_code == 200


def test_rule07_discovery_is_an_object_with_a_services_list(client):
    body = client.get("/cds-services").get_json()
    assert list(body) == ["services"] and isinstance(body["services"], list)


def test_rule08_each_service_has_hook_description_id_and_title(client):
    service = client.get("/cds-services").get_json()["services"][0]
    assert service["id"] == "myositis-next-line"
    assert service["description"] and service["title"]
    assert isinstance(service["prefetch"], dict) and service["prefetch"]


def test_rule08_service_id_is_the_service_url(client):
    service = client.get("/cds-services").get_json()["services"][0]
    assert post(client, hook_body(), f"/cds-services/{service['id']}").status_code == 200


def test_rule26_prefetch_tokens_are_context_fields_only(client):
    prefetch = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    for template in prefetch.values():
        for token in TOKEN.findall(template):
            assert token in {"context.patientId", "context.userId", "context.encounterId"}


def test_rule28_prefetch_templates_use_the_recommended_query_subset(client):
    prefetch = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    for key, template in prefetch.items():
        if "?" not in template:
            continue
        _, query = template.split("?", 1)
        for param in query.split("&"):
            name = param.split("=", 1)[0]
            assert name in {"patient", "code", "_count", "_sort"}, f"{key}: {name} is outside the prefetch subset"


def test_discovery_lists_the_medication_and_observation_templates(client):
    prefetch = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    for key in ("conditions", "medicationStatements", "medicationRequests", "observations"):
        assert "patient={{context.patientId}}" in prefetch[key]
    assert "http://loinc.org|2157-6" in prefetch["observations"]  # creatine kinase


# --- §3 request -------------------------------------------------------------------------------


def test_rule14_service_must_be_called_with_post(client):
    response = client.get(SERVICE)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method-not-allowed"


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_rule15_required_request_fields(client, field):
    body = hook_body()
    del body[field]
    response = post(client, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid-request"


def test_rule15_hook_must_match_the_service(client):
    body = hook_body()
    body["hook"] = "order-select"
    assert post(client, body).status_code == 400


def test_rule15_hook_instance_must_be_a_uuid(client):
    body = hook_body()
    body["hookInstance"] = "not-a-uuid"
    assert post(client, body).status_code == 400


def test_rule15_fhir_server_is_required_with_fhir_authorization(client):
    body = hook_body(token="t")
    response = post(client, body)
    assert response.status_code == 400
    assert any("fhirServer" in d for d in response.get_json()["details"])


@pytest.mark.parametrize("patient_id", ["Patient/123", "", None, 42, "a" * 65, "spaces are bad"])
def test_rule15_patient_id_must_be_a_bare_fhir_id(client, patient_id):
    body = hook_body()
    body["context"]["patientId"] = patient_id
    assert post(client, body).status_code == 400


def test_rule12_unknown_extension_is_ignored(client):
    body = hook_body()
    body["extension"] = {"org.example.flag": True}
    assert post(client, body).status_code == 200


def test_rule31_fhir_authorization_fields_are_required(client):
    body = hook_body(fhir_server="https://ehr.example.org/fhir", token="t")
    del body["fhirAuthorization"]["scope"]
    assert post(client, body).status_code == 400


def test_rule31_fhir_authorization_patient_must_match_context(client):
    body = hook_body(fhir_server="https://ehr.example.org/fhir", token="t")
    body["fhirAuthorization"]["patient"] = "someone-else"
    assert post(client, body).status_code == 400


def test_prefetch_value_that_is_not_a_resource_is_rejected(client):
    body = hook_body()
    body["prefetch"]["conditions"] = ["not", "a", "bundle"]
    assert post(client, body).status_code == 400


# --- §4 prefetch ------------------------------------------------------------------------------


def test_rule19_any_subset_of_prefetch_is_usable(client):
    body = hook_body()
    for key in ("medicationRequests", "medicationAdministrations", "observations", "patient"):
        del body["prefetch"][key]
    response = post(client, body)  # no fhirServer: the optional keys become stated gaps
    assert response.status_code == 200
    assert_valid_cds_response(response.get_json())


def test_rule25_required_data_missing_without_fhir_server_is_412(client):
    body = hook_body()
    del body["prefetch"]["conditions"]
    response = post(client, body)
    assert response.status_code == 412
    assert response.get_json()["error"] == "fhir-data-unavailable"


def test_rule25_no_prefetch_and_no_fhir_server_is_412(client):
    response = post(client, hook_body(prefetch=False))
    assert response.status_code == 412


def test_rule22_operation_outcome_prefetch_counts_as_failed(client):
    body = hook_body()
    body["prefetch"]["conditions"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    assert post(client, body).status_code == 412  # failed, and no server to ask instead


def test_rule23_null_conditions_means_no_data_not_412(client):
    body = hook_body()
    body["prefetch"]["conditions"] = None
    response = post(client, body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_rule32_access_token_never_sent_over_plain_http(client):
    body = hook_body(prefetch=False, fhir_server="http://ehr.example.org/fhir", token="secret")
    response = post(client, body)
    assert response.status_code == 412
    assert "https" in response.get_json()["message"]


# --- §6/§7 response and cards -----------------------------------------------------------------


def test_rule36_success_is_200_with_a_cards_array(client):
    response = post(client, hook_body())
    assert response.status_code == 200
    assert_valid_cds_response(response.get_json())
    assert response.get_json()["cards"]


def test_rule37_no_guidance_returns_an_empty_cards_array(client):
    response = post(client, hook_body("no-myositis"))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_rule37_system_actions_are_omitted(client):
    assert "systemActions" not in post(client, hook_body()).get_json()


def test_rule40_every_card_has_a_unique_uuid(client):
    cards = post(client, hook_body()).get_json()["cards"]
    uuids = [c["uuid"] for c in cards]
    assert len(set(uuids)) == len(uuids)
    for value in uuids:
        uuid.UUID(value)


def test_rule41_summaries_are_shorter_than_140_characters(client):
    for card in post(client, hook_body()).get_json()["cards"]:
        assert len(card["summary"]) < 140


def test_rule43_indicator_is_info_warning_or_critical(client):
    for card in post(client, hook_body()).get_json()["cards"]:
        assert card["indicator"] in ("info", "warning", "critical")


def test_rule44_source_has_a_label_and_an_absolute_url(client):
    for card in post(client, hook_body()).get_json()["cards"]:
        assert card["source"]["label"]
        assert card["source"]["url"].startswith("https://")


def test_rule45_suggestions_come_with_selection_behavior(client):
    cards = post(client, hook_body()).get_json()["cards"]
    with_suggestions = [c for c in cards if "suggestions" in c]
    assert with_suggestions, "the reference patient gets suggestions"
    for card in with_suggestions:
        assert card["selectionBehavior"] == "at-most-one"


def test_rule47_override_reasons_have_system_code_and_display(client):
    cards = post(client, hook_body()).get_json()["cards"]
    reasons = [r for c in cards for r in c.get("overrideReasons", [])]
    assert reasons
    for reason in reasons:
        assert reason["system"] and reason["code"] and reason["display"]


def test_rule49_suggestions_have_uuids_and_at_most_one_recommended(client):
    for card in post(client, hook_body()).get_json()["cards"]:
        suggestions = card.get("suggestions", [])
        assert all(s.get("uuid") for s in suggestions)
        assert sum(1 for s in suggestions if s.get("isRecommended")) <= 1


def test_rule50_create_actions_carry_a_resource_and_description(client):
    actions = [
        a
        for c in post(client, hook_body()).get_json()["cards"]
        for s in c.get("suggestions", [])
        for a in s.get("actions", [])
    ]
    assert actions
    for action in actions:
        assert action["type"] == "create" and action["description"]
        assert action["resource"]["resourceType"] == "MedicationRequest"
        assert action["resource"]["status"] == "draft" and action["resource"]["intent"] == "proposal"


def test_rule51_links_are_labelled_absolute_urls(client):
    links = [link for c in post(client, hook_body()).get_json()["cards"] for link in c.get("links", [])]
    assert links
    for link in links:
        assert link["label"] and link["type"] == "absolute" and link["url"].startswith("https://")


# --- §8 security ------------------------------------------------------------------------------


def test_rule56_authentication_is_required_by_default(make_app):
    client = make_app(AUTH_ENABLED=True).test_client()
    for response in (client.get("/cds-services"), post(client, hook_body())):
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"


def test_rule69_cors_preflight_is_answered_for_allowed_origins(client):
    response = client.options(
        SERVICE,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://sandbox.cds-hooks.org"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_rule69_cors_not_granted_to_unknown_origins(client):
    response = client.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


# --- §9 feedback ------------------------------------------------------------------------------


def _feedback(card_uuid: str, **extra):
    item = {"card": card_uuid, "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    item.update(extra)
    return {"feedback": [item]}


def _issued(client, n: int = 0) -> dict:
    """The n-th card of a real patient-view answer: feedback is taken only for cards the service issued."""
    return post(client, hook_body()).get_json()["cards"][n]


def test_rule73_feedback_endpoint_accepts_posts(client):
    card = post(client, hook_body()).get_json()["cards"][0]
    response = post(client, _feedback(card["uuid"]), SERVICE + "/feedback")
    assert response.status_code == 200
    assert response.get_json() == {"received": 1, "stored": 1}


def test_rule74_feedback_body_must_hold_a_feedback_array(client):
    assert post(client, {"card": "x"}, SERVICE + "/feedback").status_code == 400


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "maybe"},
        {"outcomeTimestamp": "yesterday"},
        {"outcomeTimestamp": "0000-02-31T23:59:60Z"},  # the right shape, not a real instant (issue 19, finding 7)
        {"outcomeTimestamp": "2026-02-29T10:00:00Z"},
        {"card": ""},
        {"outcome": "accepted"},  # accepted needs acceptedSuggestions
        {"acceptedSuggestions": [{"nope": 1}]},
        {"overrideReason": {"reason": {"display": "no code"}}},
    ],
)
def test_rule75_invalid_feedback_items_are_rejected(client, change):
    assert post(client, _feedback(_issued(client)["uuid"], **change), SERVICE + "/feedback").status_code == 400


def test_rule75_override_reason_coding_without_display_is_accepted(client):
    reason = {"code": "patient-declined", "system": "urn:myositis-cds:CodeSystem:override-reason"}
    body = _feedback(_issued(client)["uuid"], overrideReason={"reason": reason})
    assert post(client, body, SERVICE + "/feedback").status_code == 200


@pytest.mark.parametrize("stamp", ["2026-11-23T10:00:00Z", "2016-12-31t23:59:60z", "2024-02-29T10:00:00.5+05:30"])
def test_rule75_real_timestamps_are_accepted(client, stamp):
    body = _feedback(_issued(client)["uuid"], outcomeTimestamp=stamp)
    assert post(client, body, SERVICE + "/feedback").status_code == 200


def test_rule76_duplicate_feedback_is_accepted_and_stored_once(client):
    body = _feedback(_issued(client)["uuid"])
    assert post(client, body, SERVICE + "/feedback").get_json()["stored"] == 1
    second = post(client, body, SERVICE + "/feedback")
    assert second.status_code == 200 and second.get_json()["stored"] == 0


# Rule 77 leaves unknown card uuids to the implementer; issue 19 (finding 7) chose: refused, nothing stored.
def _refused_and_nothing_stored(client, body) -> dict:
    response = post(client, body, SERVICE + "/feedback")
    assert response.status_code == 400, response.get_json()
    assert get_storage(client.application).feedback.count() == 0
    return response.get_json()


def test_rule77_feedback_for_a_card_never_issued_is_refused_without_echoing_it(client):
    answer = _refused_and_nothing_stored(client, _feedback("Jane Doe MRN 12345"))
    assert "Jane" not in json.dumps(answer) and answer["details"] == [
        "feedback[0].card is not a card this service issued in the last 90 days"
    ]


def test_rule77_one_unknown_card_refuses_the_whole_request(client):
    known = _feedback(_issued(client)["uuid"])["feedback"][0]
    _refused_and_nothing_stored(client, {"feedback": [known, {**known, "card": str(uuid.uuid4())}]})


def test_rule77_a_suggestion_the_card_did_not_carry_is_refused(client):
    card = next(c for c in post(client, hook_body()).get_json()["cards"] if c.get("suggestions"))
    body = _feedback(card["uuid"], outcome="accepted", acceptedSuggestions=[{"id": "Jane Doe"}])
    _refused_and_nothing_stored(client, body)
    good = _feedback(card["uuid"], outcome="accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
    assert post(client, good, SERVICE + "/feedback").status_code == 200


def test_rule77_an_override_reason_not_offered_by_the_card_is_refused(client):
    card = _issued(client)
    for reason in ({"code": "Jane Doe"}, {"code": "patient-declined", "system": "https://elsewhere.example"}):
        _refused_and_nothing_stored(client, _feedback(card["uuid"], overrideReason={"reason": reason}))


def test_rule77_a_card_issued_before_the_window_is_refused(client):
    client.application.config["FEEDBACK_WINDOW_DAYS"] = 0  # every card is older than "now minus 0 days"
    card = _issued(client)
    _refused_and_nothing_stored(client, _feedback(card["uuid"]))


# --- errors -------------------------------------------------------------------------------------


def test_unknown_service_is_404_json(client):
    response = post(client, hook_body(), "/cds-services/nope")
    assert response.status_code == 404 and response.get_json()["error"] == "not-found"


def test_unknown_route_is_404_json(client):
    response = client.get("/nowhere")
    assert response.status_code == 404 and response.get_json()["error"] == "not-found"


def test_non_json_body_is_415(client):
    response = client.post(SERVICE, data="hook=patient-view", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.get_json()["error"] == "unsupported-media-type"


def test_invalid_json_is_400(client):
    response = client.post(SERVICE, data=b'{"hook": ', content_type="application/json")
    assert response.status_code == 400


def test_invalid_utf8_is_400(client):
    response = client.post(SERVICE, data=b'{"hook": "\xff\xfe"}', content_type="application/json")
    assert response.status_code == 400


def test_too_large_body_is_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post(SERVICE, data=b"[" + b"1," * 2000 + b"1]", content_type="application/json")
    assert response.status_code == 413 and response.get_json()["error"] == "payload-too-large"


def test_deeply_nested_json_is_400(client):
    deep = b'{"a":' * 200 + b"1" + b"}" * 200
    response = client.post(SERVICE, data=deep, content_type="application/json")
    assert response.status_code == 400


def test_request_body_that_is_not_an_object_is_400(client):
    assert post(client, ["patient-view"]).status_code == 400


# --- further rules ------------------------------------------------------------------------------


def test_rule02_repeated_calls_for_the_same_patient_give_the_same_cards(client):
    first = post(client, hook_body()).get_json()["cards"]
    second = post(client, hook_body()).get_json()["cards"]

    def strip(cards: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k not in ("uuid", "suggestions")} for c in cards]

    assert strip(first) == strip(second)


def test_rule24_a_paginated_prefetch_is_completed_from_the_fhir_server(client):
    import re

    import responses

    from tests.support import resources_of, searchset

    base = "https://ehr.example.org/fhir"
    statements = [r for r in resources_of("reference-dm") if r["resourceType"] == "MedicationStatement"]
    body = hook_body(fhir_server=base, token="t")
    first_page = searchset(statements[:2])
    first_page["link"] = [{"relation": "next", "url": f"{base}/MedicationStatement?patient=example-dm-001&page=2"}]
    body["prefetch"]["medicationStatements"] = first_page
    with responses.RequestsMock() as rsps:
        rsps.get(re.compile(rf"{re.escape(base)}/MedicationStatement\?.*page=2"), json=searchset(statements[2:]))
        paged = post(client, body).get_json()
    whole = post(client, hook_body()).get_json()
    assert [c["summary"] for c in paged["cards"]] == [c["summary"] for c in whole["cards"]]


def test_rule24_a_paginated_prefetch_without_server_access_is_a_stated_gap(client):
    from tests.support import resources_of, searchset

    statements = [r for r in resources_of("reference-dm") if r["resourceType"] == "MedicationStatement"]
    body = hook_body()
    first_page = searchset(statements[:2])
    first_page["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/MedicationStatement?page=2"}]
    body["prefetch"]["medicationStatements"] = first_page
    response = post(client, body)
    assert response.status_code == 200
    assert "first prefetched page" in str(response.get_json())


def test_rule27_templates_are_rendered_from_context_and_user_tokens():
    from service.gather import render_template
    from service.hook_request import parse_hook_request

    raw = orjson.dumps(hook_body(prefetch=False))
    request = parse_hook_request(raw, expected_hook="patient-view", prefetch_keys=frozenset())
    context = request.context
    assert render_template("Condition?patient={{context.patientId}}", context) == "Condition?patient=example-dm-001"
    assert render_template("Practitioner/{{userPractitionerId}}", context) == "Practitioner/example-rheumatologist"
    assert render_template("PractitionerRole/{{userPractitionerRoleId}}", context) is None
    assert render_template("Encounter/{{context.encounterId}}", context) is None  # never "Encounter/"


def test_rule32_the_access_token_is_never_stored(make_app, tmp_path):
    app = make_app(DATABASE=str(tmp_path / "t.sqlite3"))
    client = app.test_client()
    body = hook_body(fhir_server="https://ehr.example.org/fhir", token="transient-token-42")
    assert post(client, body).status_code == 200
    for path in tmp_path.iterdir():
        assert b"transient-token-42" not in path.read_bytes()


def test_rule71_nothing_is_cached_across_hook_instances(client):
    assert post(client, hook_body()).get_json()["cards"]
    body = hook_body()
    body["prefetch"]["conditions"] = None  # the same patient, now with no myositis on record
    assert post(client, body).get_json() == {"cards": []}


def test_readiness_reports_the_knowledge_version(client):
    import cards

    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["knowledge_version"] == cards.load_knowledge().meta.version
