"""Hostile input to the order hooks (issue 18): only 2xx with valid cards or 4xx with the JSON error shape.

The draft orders are the new input these hooks read: random entries, MedicationRequests assembled from real
field values mixed with garbage, mutations anywhere in a valid request, and the schema's own cases.
Fixed seed, bounded budget; longer: ``FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/reliability -k fuzz``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

import service
from service.offline import draft_medication_order
from tests.reliability.fuzz_support import (
    assert_hook_answer,
    dumps,
    fhir_like_resources,
    fuzz_settings,
    garbage_entries,
    mutated_requests,
    valid_hook_body,
)

pytestmark = pytest.mark.usefixtures("offline")

SELECT = "/cds-services/myositis-order-select"
SIGN = "/cds-services/myositis-order-sign"
_SCHEMA = schemathesis.openapi.from_dict(
    json.loads((Path(service.__file__).parent / "openapi.json").read_text(encoding="utf-8"))
)


def _order_body(hook: str, entries: list[Any]) -> dict[str, Any]:
    body = valid_hook_body()
    body["hook"] = hook
    body["context"]["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    if hook == "order-select":
        body["context"]["selections"] = ["MedicationRequest/fuzz-1"]
    return body


def _valid(hook: str) -> dict[str, Any]:
    pid = valid_hook_body()["context"]["patientId"]
    return _order_body(hook, [{"resource": draft_medication_order(pid, "121191", "rituximab", "fuzz-1")}])


def test_the_valid_bases_get_their_card(module_app: Flask) -> None:
    for path, hook in ((SELECT, "order-select"), (SIGN, "order-sign")):
        response = module_app.test_client().post(path, json=_valid(hook))
        assert response.status_code == 200 and len(response.get_json()["cards"]) == 1


@fuzz_settings(200)
@given(
    entries=st.lists(
        st.one_of(garbage_entries, fhir_like_resources("MedicationRequest").map(lambda r: {"resource": r})),
        max_size=6,
    ),
    which=st.sampled_from([(SELECT, "order-select"), (SIGN, "order-sign")]),
)
def test_random_draft_orders_never_fail_the_service(module_app: Flask, entries: list[Any], which: Any) -> None:
    path, hook = which
    assert_hook_answer(
        module_app.test_client().post(path, data=dumps(_order_body(hook, entries)), content_type="application/json")
    )


@fuzz_settings(200)
@given(raw=mutated_requests(_valid("order-select")))
def test_mutations_of_a_valid_order_select_request_never_fail_the_service(module_app: Flask, raw: bytes) -> None:
    assert_hook_answer(module_app.test_client().post(SELECT, data=raw, content_type="application/json"))


@fuzz_settings(100)
@given(raw=mutated_requests(_valid("order-sign")))
def test_mutations_of_a_valid_order_sign_request_never_fail_the_service(module_app: Flask, raw: bytes) -> None:
    assert_hook_answer(module_app.test_client().post(SIGN, data=raw, content_type="application/json"))


@fuzz_settings(150)
@given(
    case=st.one_of(
        _SCHEMA["/cds-services/{service_id}"]["POST"].as_strategy(
            GenerationMode.POSITIVE, path_parameters={"service_id": "myositis-order-select"}
        ),
        _SCHEMA["/cds-services/{service_id}"]["POST"].as_strategy(
            GenerationMode.NEGATIVE, path_parameters={"service_id": "myositis-order-sign"}
        ),
    )
)
def test_schema_cases_sent_to_the_order_services_are_answered(module_app: Flask, case: Any) -> None:
    body = case.body
    raw = body if isinstance(body, bytes) else dumps(body)
    url = SELECT if "order-select" in case.formatted_path else SIGN
    assert_hook_answer(module_app.test_client().post(url, data=raw, content_type=case.media_type or "application/json"))
