"""Hostile input to the hook endpoint: only 2xx with valid cards or 4xx with the JSON error shape.

Fixed seed (``derandomize``), bounded budget; a longer run::

    FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/reliability -k fuzz
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz_support import (
    FHIR_BASE,
    PREFETCH_KEYS,
    SERVICE,
    assert_hook_answer,
    bundle_of,
    dumps,
    example_resources,
    fhir_like_resources,
    fuzz_settings,
    garbage_entries,
    json_values,
    mutated_requests,
    post_raw,
    valid_hook_body,
)
from tests.support import PREFETCH_TYPES, hook_body, prefetch_for

pytestmark = pytest.mark.usefixtures("offline")

_BASE = valid_hook_body()
_BASE_REMOTE = {
    **valid_hook_body(),
    "fhirServer": FHIR_BASE,
    "fhirAuthorization": hook_body(token="fuzz-token")["fhirAuthorization"],
}


@fuzz_settings(300)
@given(body=json_values)
def test_random_json_bodies_never_fail_the_service(module_app: Flask, body: Any) -> None:
    assert_hook_answer(post_raw(module_app.test_client(), SERVICE, dumps(body)))


@fuzz_settings(200)
@given(
    data=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "application/fhir+json", "application/json; charset=latin-1", "text/plain", ""]
    ),
)
def test_random_bytes_never_fail_the_service(module_app: Flask, data: bytes, content_type: str) -> None:
    assert_hook_answer(post_raw(module_app.test_client(), SERVICE, data, content_type))


@fuzz_settings(150)
@given(
    position=st.integers(0, 10**9),
    junk=st.sampled_from(
        [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82", b"\x00"]
    ),
)
def test_invalid_utf8_anywhere_in_a_valid_request_is_400(module_app: Flask, position: int, junk: bytes) -> None:
    """Invalid UTF-8 spliced into a valid request is refused as invalid JSON, wherever it lands."""
    raw = dumps(_BASE)
    at = position % len(raw)
    response = post_raw(module_app.test_client(), SERVICE, raw[:at] + junk + raw[at:])
    assert_hook_answer(response)
    if junk != b"\x00":
        assert response.status_code == 400


@fuzz_settings(400)
@given(raw=mutated_requests(_BASE))
def test_mutations_of_a_valid_request_never_fail_the_service(module_app: Flask, raw: bytes) -> None:
    """Wrong types at every path, deleted fields, huge strings and arrays, deep nesting, wrong resources."""
    assert_hook_answer(post_raw(module_app.test_client(), SERVICE, raw))


@fuzz_settings(100)
@given(raw=mutated_requests(_BASE_REMOTE))
def test_mutations_of_a_request_with_a_fhir_server_never_fail_the_service(module_app: Flask, raw: bytes) -> None:
    """Same, with fhirServer/fhirAuthorization set (the server is unreachable: reads fail as refused)."""
    assert_hook_answer(post_raw(module_app.test_client(), SERVICE, raw))


@fuzz_settings(200)
@given(data=st.data())
def test_random_fhir_like_resources_in_prefetch_never_fail_the_service(module_app: Flask, data: st.DataObject) -> None:
    body = copy.deepcopy(_BASE)
    for key in PREFETCH_KEYS:
        choice = data.draw(st.sampled_from(["keep", "fuzz", "fuzz", "null", "absent", "resource"]), label=key)
        if choice == "fuzz":
            if key == "patient":
                body["prefetch"][key] = data.draw(fhir_like_resources("Patient"))
            else:
                entries = data.draw(st.lists(st.builds(lambda r: {"resource": r}, fhir_like_resources()), max_size=12))
                body["prefetch"][key] = bundle_of(body["prefetch"][key]["entry"] + entries)
        elif choice == "null":
            body["prefetch"][key] = None
        elif choice == "absent":
            del body["prefetch"][key]
        elif choice == "resource":
            body["prefetch"][key] = copy.deepcopy(data.draw(st.sampled_from(example_resources())))
    assert_hook_answer(post_raw(module_app.test_client(), SERVICE, dumps(body)))


@fuzz_settings(100)
@given(data=st.data())
def test_garbage_bundle_entries_never_fail_the_service(module_app: Flask, data: st.DataObject) -> None:
    body = copy.deepcopy(_BASE)
    key = data.draw(st.sampled_from(list(PREFETCH_TYPES)))
    entries = list(body["prefetch"][key]["entry"])
    garbage = data.draw(st.lists(garbage_entries, max_size=10))
    merged = data.draw(st.permutations(entries + garbage))
    body["prefetch"][key] = bundle_of(merged)
    if data.draw(st.booleans()):
        body["prefetch"][key]["link"] = data.draw(json_values)
    assert_hook_answer(post_raw(module_app.test_client(), SERVICE, dumps(body)))


@pytest.mark.parametrize("patient", ["reference-dm", "dm-coding-variants", "no-myositis"])
def test_every_prefetch_key_holding_every_wrong_resource_type_is_answered(module_app: Flask, patient: str) -> None:
    """Each key in turn holds a resource of each other type (bare, not a Bundle): answered, never 5xx."""
    client = module_app.test_client()
    by_type: dict[str, dict[str, Any]] = {}
    for resource in example_resources():
        by_type.setdefault(resource["resourceType"], resource)
    for key in PREFETCH_KEYS:
        for resource in by_type.values():
            body = hook_body(patient)
            body["prefetch"][key] = copy.deepcopy(resource)
            assert_hook_answer(client.post(SERVICE, json=body))
            body["prefetch"][key] = bundle_of([{"resource": copy.deepcopy(r)} for r in by_type.values()])
            assert_hook_answer(client.post(SERVICE, json=body))


def _ten_thousand(kind: str) -> list[Any]:
    own = [e["resource"] for e in prefetch_for("reference-dm")["medicationStatements"]["entry"]]
    if kind == "valid":
        return [{"resource": {**own[i % len(own)], "id": f"ms-{i}"}} for i in range(10_000)]
    if kind == "garbage":
        return [[i, {"x": i}, None, "entry"][i % 4] for i in range(10_000)]
    if kind == "invalid-fields":
        return [
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "id": f"b{i}",
                    "status": i,
                    "subject": {"reference": "Patient/example-dm-001"},
                    "medicationCodeableConcept": {"coding": "nope"},
                }
            }
            for i in range(10_000)
        ]
    return [
        {
            "resource": {
                "resourceType": "Observation",
                "id": f"o{i}",
                "status": "final",
                "subject": {"reference": "Patient/example-dm-001"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "2157-6"}]},
                "effectiveDateTime": f"20{10 + i % 16}-01-{1 + i % 28:02d}",
                "valueQuantity": {"value": i % 5000, "unit": "U/L"},
            }
        }
        for i in range(10_000)
    ]


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("medicationStatements", "valid"),
        ("medicationStatements", "garbage"),
        ("medicationStatements", "invalid-fields"),
        ("observations", "observations"),
        ("conditions", "valid"),
        ("medicationRequests", "garbage"),
    ],
)
def test_a_bundle_with_ten_thousand_entries_is_answered(module_app: Flask, kind: str, key: str) -> None:
    body = hook_body()
    body["prefetch"][key] = bundle_of(_ten_thousand(kind))
    assert_hook_answer(module_app.test_client().post(SERVICE, json=body))


def test_every_prefetch_key_with_ten_thousand_entries_is_answered(module_app: Flask) -> None:
    body = hook_body()
    for key in PREFETCH_TYPES:
        body["prefetch"][key] = bundle_of(_ten_thousand("valid" if key != "observations" else "observations"))
    assert_hook_answer(module_app.test_client().post(SERVICE, json=body))


def test_the_offline_guard_refuses_fhir_reads(module_app: Flask) -> None:
    """Sanity: fuzzed fhirServer URLs are never reached; the reads fail as refused (412: conditions required)."""
    body = valid_hook_body()
    del body["prefetch"]
    body["fhirServer"] = FHIR_BASE
    body["fhirAuthorization"] = hook_body(token="t")["fhirAuthorization"]
    response = module_app.test_client().post(SERVICE, json=body)
    assert response.status_code == 412
