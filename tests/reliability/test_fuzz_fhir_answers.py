"""Hostile FHIR server answers (mocked with ``responses``): the hook still answers 200 with cards, or 412.

Each example draws, per query, a status, a body (real Bundle, fuzzed resources, random JSON,
bytes, OperationOutcome) and ``next`` links (loops, other servers, garbage).
Longer: ``FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/reliability -k fuzz``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import responses
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz_support import (
    FHIR_BASE,
    SERVICE,
    assert_hook_answer,
    bundle_of,
    dumps,
    fhir_like_resources,
    fuzz_settings,
    garbage_entries,
    json_values,
)
from tests.support import PREFETCH_TYPES, hook_body, prefetch_for

_PREFETCH = prefetch_for("reference-dm")
_PATIENT = _PREFETCH["patient"]["id"]
_QUERIES: dict[str, str] = {"patient": "Patient", **PREFETCH_TYPES}


@pytest.fixture(scope="module")
def app(make_module_app: Callable[..., Flask]) -> Flask:
    return make_module_app(FHIR_DEADLINE_S=1.0, FHIR_MAX_PAGES=3)


def _links(draw: st.DrawFn, rtype: str) -> list[Any] | Any:
    return draw(
        st.sampled_from(
            [
                [],
                [{"relation": "next", "url": f"{FHIR_BASE}/{rtype}?patient={_PATIENT}"}],  # loops to itself
                [{"relation": "next", "url": f"{FHIR_BASE}/{rtype}?patient={_PATIENT}&page=2"}],
                [{"relation": "next", "url": f"{rtype}?patient={_PATIENT}&page=3"}],  # relative
                [{"relation": "next", "url": "https://elsewhere.example/fhir/steal"}],
                [{"relation": "next", "url": "javascript:alert(1)"}],
                [{"relation": "next", "url": 7}],
                "next",
            ]
        )
    )


@st.composite
def fhir_answers(draw: st.DrawFn, key: str) -> tuple[int, dict[str, str], bytes]:
    rtype = _QUERIES[key]
    status = draw(st.sampled_from([200, 200, 200, 200, 400, 401, 404, 410, 429, 500, 503, 302]))
    headers = {"Content-Type": "application/fhir+json"}
    if status == 429:
        headers["Retry-After"] = draw(
            st.sampled_from(["0", "0.05", "-1", "3600", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])
        )
    if status == 302:
        headers["Location"] = "https://elsewhere.example/"
    kind = draw(st.sampled_from(["real", "fuzzed", "garbage", "json", "bytes", "outcome", "wrong-type"]))
    real = _PREFETCH[key]
    if kind == "real":
        body: Any = json.loads(json.dumps(real))
    elif kind == "fuzzed":
        body = bundle_of([{"resource": r} for r in draw(st.lists(fhir_like_resources(), max_size=8))])
    elif kind == "garbage":
        body = bundle_of(draw(st.lists(garbage_entries, max_size=8)))
    elif kind == "json":
        body = draw(json_values)
    elif kind == "outcome":
        body = {
            "resourceType": "OperationOutcome",
            "issue": draw(
                st.sampled_from([[{"severity": "error", "code": "processing"}], [], "x", [{"severity": "information"}]])
            ),
        }
    elif kind == "wrong-type":
        body = {"resourceType": draw(st.sampled_from(["Patient", "Bundle", "Observation", 5])), "id": _PATIENT}
    else:
        return status, headers, draw(st.binary(max_size=100))
    if isinstance(body, dict) and body.get("resourceType") == "Bundle" and key != "patient":
        body["link"] = _links(draw, rtype)
    return status, headers, dumps(body)


def _register(mock: responses.RequestsMock, key: str, answer: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = answer
    rtype = _QUERIES[key]
    url = re.compile(rf"{re.escape(FHIR_BASE)}/{rtype}(/{_PATIENT}|\?.*)$")
    mock.add_callback(responses.GET, url, callback=lambda _request: (status, headers, body))


@fuzz_settings(250)
@given(data=st.data())
def test_hostile_fhir_answers_end_in_cards_or_412(
    app: Flask, offline: responses.RequestsMock, data: st.DataObject
) -> None:
    offline.reset()
    keep = data.draw(st.lists(st.sampled_from(sorted(_QUERIES)), unique=True, max_size=3), label="prefetched")
    for key in _QUERIES:
        if key not in keep:
            _register(offline, key, data.draw(fhir_answers(key), label=key))
    offline.add(responses.GET, re.compile(rf"{re.escape(FHIR_BASE)}/Medication/.*"), status=404)
    body = hook_body(prefetch={k: _PREFETCH[k] for k in keep}, fhir_server=FHIR_BASE, token="fuzz-token")
    response = app.test_client().post(SERVICE, json=body)
    assert_hook_answer(response)
    assert response.status_code in (200, 412), response.status_code
