"""Schema-based fuzzing from the service's own OpenAPI document (schemathesis strategies).

Positive cases (valid per ``service/openapi.json``) and negative cases (violating it) for the hook
and feedback operations, sent through the Flask test client. Fixed seed, bounded budget; longer:
``FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/reliability -k fuzz``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

import service
from tests.reliability.fuzz_support import (
    FEEDBACK,
    SERVICE,
    assert_feedback_answer,
    assert_hook_answer,
    dumps,
    fuzz_settings,
)

pytestmark = pytest.mark.usefixtures("offline")

_DOCUMENT: dict[str, Any] = json.loads((Path(service.__file__).parent / "openapi.json").read_text(encoding="utf-8"))
_SCHEMA = schemathesis.openapi.from_dict(_DOCUMENT)
_SERVICE_ID = {"service_id": "myositis-next-line"}


def _cases(path: str, mode: GenerationMode) -> st.SearchStrategy[Any]:
    return _SCHEMA[path]["POST"].as_strategy(mode, path_parameters=_SERVICE_ID)


def _send(app: Flask, url: str, case: Any) -> Any:
    body = case.body
    raw = body if isinstance(body, bytes) else dumps(body)
    return app.test_client().post(url, data=raw, content_type=case.media_type or "application/json")


def test_the_served_document_is_the_one_fuzzed(module_app: Flask) -> None:
    assert module_app.test_client().get("/openapi.json").get_json() == _DOCUMENT


@fuzz_settings(200)
@given(case=_cases("/cds-services/{service_id}", GenerationMode.POSITIVE))
def test_schema_valid_hook_requests_are_answered(module_app: Flask, case: Any) -> None:
    assert_hook_answer(_send(module_app, SERVICE, case))


@fuzz_settings(200)
@given(case=_cases("/cds-services/{service_id}", GenerationMode.NEGATIVE))
def test_schema_invalid_hook_requests_are_4xx(module_app: Flask, case: Any) -> None:
    assert_hook_answer(_send(module_app, SERVICE, case))


@fuzz_settings(60)
@given(case=_cases("/cds-services/{service_id}/feedback", GenerationMode.POSITIVE))
def test_schema_valid_feedback_is_answered(module_app: Flask, case: Any) -> None:
    assert_feedback_answer(_send(module_app, FEEDBACK, case))


@fuzz_settings(60)
@given(case=_cases("/cds-services/{service_id}/feedback", GenerationMode.NEGATIVE))
def test_schema_invalid_feedback_is_4xx(module_app: Flask, case: Any) -> None:
    assert_feedback_answer(_send(module_app, FEEDBACK, case))


@fuzz_settings(100)
@given(
    service_id=st.text(min_size=1, max_size=300).filter(lambda s: "/" not in s),
    which=st.sampled_from(["", "/feedback"]),
)
def test_any_service_id_is_answered_in_json(module_app: Flask, service_id: str, which: str) -> None:
    response = module_app.test_client().post(f"/cds-services/{quote(service_id, safe='')}{which}", json={})
    assert_hook_answer(response)


@pytest.mark.parametrize(
    "url", ["/cds-services//feedback", "//cds-services", "/cds-services/myositis-next-line//feedback"]
)
def test_urls_with_double_slashes_are_answered_in_json_not_redirected(module_app: Flask, url: str) -> None:
    """werkzeug's merge_slashes answers these with a 308 and an HTML page; the contract is JSON only."""
    response = module_app.test_client().post(url, json={})
    assert response.mimetype == "application/json", (response.status_code, response.headers.get("Location"))
    assert_hook_answer(response)
