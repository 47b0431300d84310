"""EHR simulator: discovery, request building, prefetch, offline prefetch, card printing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
import responses

from sandbox import ehr, terminal
from sandbox.patients import get_patient

SERVICE = "http://127.0.0.1:9999"
FHIR = "http://127.0.0.1:9998/fhir"
DISCOVERY = {
    "services": [
        {"id": "other", "hook": "patient-view"},
        {
            "id": "myositis-next-line",
            "hook": "patient-view",
            "prefetch": {
                "patient": "Patient/{{context.patientId}}",
                "conditions": "Condition?patient={{context.patientId}}",
                "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|2157-6",
                "user": "{{context.userId}}",
            },
        },
    ]
}


def test_render_template_tokens() -> None:
    ctx = {"patientId": "p1", "userId": "Practitioner/u9"}
    assert ehr.render_template("Condition?patient={{context.patientId}}", ctx) == "Condition?patient=p1"
    assert ehr.render_template("{{context.userId}}", ctx) == "Practitioner/u9"
    assert ehr.render_template("Practitioner/{{userPractitionerId}}", ctx) == "Practitioner/u9"
    assert ehr.render_template("Patient/{{userPatientId}}", ctx) is None  # user is not a Patient
    assert ehr.render_template("Encounter/{{context.encounterId}}", ctx) is None


def test_service_base_strips_cds_services() -> None:
    assert ehr.service_base("http://h:1/cds-services/") == "http://h:1"
    assert ehr.service_base("http://h:1/prefix") == "http://h:1/prefix"


@responses.activate
def test_build_request_with_prefetch() -> None:
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    responses.get(f"{FHIR}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    responses.get(f"{FHIR}/Condition", json={"resourceType": "Bundle", "type": "searchset", "total": 0})
    responses.get(f"{FHIR}/Observation", status=500)  # a failing search is left out, not sent as null
    responses.get(f"{FHIR}/Practitioner/u9", status=404)  # a 404 read becomes null

    body = ehr.build_request(SERVICE, FHIR, "p1", prefetch=True, access_token="tok", user_id="Practitioner/u9")

    uuid.UUID(body["hookInstance"])
    assert body["hook"] == "patient-view"
    assert body["fhirServer"] == FHIR
    assert body["context"] == {"userId": "Practitioner/u9", "patientId": "p1"}
    auth = body["fhirAuthorization"]
    assert auth["access_token"] == "tok" and auth["token_type"] == "Bearer" and auth["expires_in"] == 300
    assert auth["scope"] and auth["subject"]
    assert body["prefetch"]["patient"] == {"resourceType": "Patient", "id": "p1"}
    assert body["prefetch"]["conditions"]["total"] == 0
    assert body["prefetch"]["user"] is None
    assert "observations" not in body["prefetch"]
    fhir_calls = [c for c in responses.calls if c.request.url.startswith(FHIR)]
    assert all(c.request.headers["Authorization"] == "Bearer tok" for c in fhir_calls)
    assert any("code=http" in c.request.url for c in fhir_calls)


@responses.activate
def test_build_request_without_prefetch_touches_no_fhir_server() -> None:
    responses.get(f"{SERVICE}/cds-services", json=DISCOVERY)
    body = ehr.build_request(SERVICE, FHIR, "p1", prefetch=False, access_token="tok")
    assert "prefetch" not in body
    assert len(responses.calls) == 1
    assert (
        body["hookInstance"]
        != ehr.build_request(DISCOVERY, FHIR, "p1", prefetch=False, access_token="tok")["hookInstance"]
    )


@responses.activate
def test_discovery_errors_are_clear() -> None:
    responses.get(f"{SERVICE}/cds-services", status=503)
    with pytest.raises(ehr.EhrError, match="HTTP 503"):
        ehr.discovery(SERVICE)
    with pytest.raises(ehr.EhrError, match="no service 'nope'"):
        ehr.find_service(DISCOVERY, "nope")


def test_unreachable_service_is_an_ehr_error() -> None:
    with pytest.raises(ehr.EhrError, match="cannot reach"):
        ehr.fire("http://127.0.0.1:9", {"hook": "patient-view"}, timeout=2)


@responses.activate
def test_fire_posts_json_to_the_service() -> None:
    responses.post(f"{SERVICE}/cds-services/myositis-next-line", json={"cards": []})
    response = ehr.fire(SERVICE + "/cds-services", {"hook": "patient-view"}, jwt="j.w.t")
    assert response.json() == {"cards": []}
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer j.w.t"
    assert json.loads(sent.body) == {"hook": "patient-view"}


def test_offline_prefetch_from_the_packaged_bundle() -> None:
    discovery = {
        "services": [
            {
                "id": "myositis-next-line",
                "hook": "patient-view",
                "prefetch": {
                    "patient": "Patient/{{context.patientId}}",
                    "statements": "MedicationStatement?patient={{context.patientId}}&_include=MedicationStatement:medication",
                    "ck": "Observation?patient={{context.patientId}}&code=http://loinc.org|2157-6,http://loinc.org|1761-6",
                    "requests": "MedicationRequest?patient={{context.patientId}}",
                },
            }
        ]
    }
    bundle = get_patient("example-dm-coding").bundle()
    body = ehr.build_offline_request(discovery, bundle, "example-dm-coding")
    assert "fhirServer" not in body and "fhirAuthorization" not in body
    pre = body["prefetch"]
    assert pre["patient"]["id"] == "example-dm-coding"
    assert pre["statements"]["total"] == 7
    included = [e for e in pre["statements"]["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["resourceType"] for e in included] == ["Medication"]
    assert pre["ck"]["total"] == 2
    assert pre["requests"] == {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    other = ehr.build_offline_request(discovery, bundle, "someone-else")
    assert other["prefetch"]["patient"] is None and other["prefetch"]["statements"]["total"] == 0


def test_markdown_to_text() -> None:
    md = (
        "## Options\n\n**Bold** and *italic* and `code`.\n\n"
        "- first [PubMed](https://pubmed.ncbi.nlm.nih.gov/1/) and a cite [[3]](https://example.org/x)\n"
        "  - nested\n1. numbered\n\n> quoted\n\n| a | b |\n|---|---|\n"
    )
    text = terminal.markdown_to_text(md, width=200)
    assert "OPTIONS" in text
    assert "Bold and italic and code." in text
    assert "• first PubMed <https://pubmed.ncbi.nlm.nih.gov/1/> and a cite [3]" in text
    assert "  • nested" in text and "1. numbered" in text and "│ quoted" in text and "| a | b |" in text
    assert "**" not in text and "](" not in text


def test_markdown_never_splits_a_url() -> None:
    url = "https://pubmed.ncbi.nlm.nih.gov/?term=" + "x" * 120
    text = terminal.markdown_to_text(f"see [here]({url}) please", width=40)
    assert url in text


def _card(**extra: Any) -> dict[str, Any]:
    card = {
        "uuid": str(uuid.uuid4()),
        "summary": "Refractory DM: 3 options",
        "indicator": "warning",
        "source": {"label": "myositis-cds", "url": "https://example.org"},
        "detail": "**Tried**: x",
    }
    card.update(extra)
    return card


def test_format_cards() -> None:
    text = terminal.format_cards(
        {
            "cards": [
                _card(
                    suggestions=[
                        {
                            "label": "Consider tacrolimus",
                            "isRecommended": False,
                            "actions": [
                                {
                                    "type": "create",
                                    "description": "draft order",
                                    "resource": {"resourceType": "MedicationRequest"},
                                }
                            ],
                        }
                    ],
                    selectionBehavior="any",
                    links=[
                        {"label": "BSR 2022", "url": "https://doi.org/10.1093/rheumatology/keac115", "type": "absolute"}
                    ],
                    overrideReasons=[{"code": "x", "display": "Not relevant"}],
                )
            ]
        }
    )
    assert "[1/1] ! WARNING: Refractory DM: 3 options" in text
    assert "Tried: x" in text
    assert "Suggestions (choose any):" in text and "create MedicationRequest: draft order" in text
    assert "BSR 2022: https://doi.org/10.1093/rheumatology/keac115" in text
    assert "Override reasons: Not relevant" in text
    assert "Source: myositis-cds, https://example.org" in text


def test_format_cards_empty_and_invalid() -> None:
    assert "No cards" in terminal.format_cards({"cards": []})
    assert "not a CDS Hooks response" in terminal.format_cards({"error": "x"})


def test_requests_session_is_not_leaked() -> None:
    # build_request with an explicit session uses it and leaves it open for the caller
    session = requests.Session()
    with responses.RequestsMock() as mock:
        mock.get(f"{FHIR}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
        mock.get(f"{FHIR}/Condition", json={"resourceType": "Bundle", "type": "searchset"})
        mock.get(f"{FHIR}/Observation", json={"resourceType": "Bundle", "type": "searchset"})
        mock.get(f"{FHIR}/Practitioner/example-rheumatologist", status=404)
        body = ehr.build_request(DISCOVERY, FHIR, "p1", prefetch=True, access_token="t", session=session)
    assert set(body["prefetch"]) == {"patient", "conditions", "observations", "user"}
    session.close()


def test_markdown_escapes_read_plainly_in_the_terminal() -> None:
    from sandbox.terminal import markdown_to_text

    assert markdown_to_text("Cited \\[1\\]\\[2\\]; record text a\\_b \\<x\\>") == "Cited [1][2]; record text a_b <x>"
