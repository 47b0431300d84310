"""Hostile input to the feedback endpoint: only 200 ``{"received", "stored"}`` or 4xx JSON errors.

Fixed seed, bounded budget; longer: ``FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/reliability -k fuzz``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from service.hooks.patient_view import SERVICE_ID
from service.storage import IssuedCard, get_storage
from tests.reliability.fuzz_support import (
    FEEDBACK,
    assert_feedback_answer,
    dumps,
    fuzz_settings,
    json_values,
    mutated_requests,
    post_raw,
)

_VALID_ITEM: dict[str, Any] = {
    "card": "0b8f4ad6-8f2a-4c5e-9d3e-1a2b3c4d5e6f",
    "outcome": "overridden",
    "outcomeTimestamp": "2026-11-23T10:00:00Z",
    "overrideReason": {
        "reason": {
            "code": "patient-declined",
            "system": "urn:myositis-cds:CodeSystem:override-reason",
            "display": "Declined",
        },
        "userComment": "patient prefers to wait",
    },
}
_VALID_ACCEPTED: dict[str, Any] = {
    "card": "1c9f4ad6-8f2a-4c5e-9d3e-1a2b3c4d5e6f",
    "outcome": "accepted",
    "acceptedSuggestions": [{"id": "2d0f4ad6-8f2a-4c5e-9d3e-1a2b3c4d5e6f"}],
    "outcomeTimestamp": "2026-11-23T10:00:00.123+01:00",
}
_BASE = {"feedback": [_VALID_ITEM, _VALID_ACCEPTED]}
_BULK = [
    f"bulk-{unique}-{count}-{i}"
    for unique in (True, False)
    for count in (999, 1000, 1001, 10_000)
    for i in range(count)
]


@pytest.fixture(scope="module", autouse=True)
def _issued_cards(module_app: Flask) -> None:
    """Feedback is taken only for cards the service issued (issue 19): issue the ones the valid items name, so
    mutations of valid feedback reach the store."""
    cards = [
        IssuedCard(_VALID_ITEM["card"], "next-line"),
        IssuedCard(
            _VALID_ACCEPTED["card"], "next-line", suggestions=(_VALID_ACCEPTED["acceptedSuggestions"][0]["id"],)
        ),
        *(IssuedCard(name, "next-line") for name in _BULK),
    ]
    get_storage(module_app).issued.record(SERVICE_ID, cards)


timestamps = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.from_regex(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,12})?([Zz]|[+-]\d\d:\d\d)\Z"),
    st.text(max_size=40),
)

feedback_items = st.fixed_dictionaries(
    {},
    optional={
        "card": st.one_of(st.uuids().map(str), st.text(max_size=600), json_values),
        "outcome": st.one_of(st.sampled_from(["accepted", "overridden", "ACCEPTED", ""]), json_values),
        "outcomeTimestamp": st.one_of(timestamps, json_values),
        "acceptedSuggestions": st.one_of(
            st.lists(st.fixed_dictionaries({"id": st.one_of(st.text(max_size=600), json_values)}), max_size=4),
            json_values,
        ),
        "overrideReason": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "reason": st.one_of(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "code": st.one_of(st.text(max_size=600), json_values),
                                "system": st.one_of(st.text(max_size=40), json_values),
                                "display": json_values,
                            },
                        ),
                        json_values,
                    ),
                    "userComment": st.one_of(st.text(max_size=200), json_values),
                },
            ),
            json_values,
        ),
        "extension": json_values,
    },
)


@fuzz_settings(300)
@given(body=json_values)
def test_random_json_feedback_never_fails(module_app: Flask, body: Any) -> None:
    assert_feedback_answer(post_raw(module_app.test_client(), FEEDBACK, dumps(body)))


@fuzz_settings(150)
@given(data=st.binary(max_size=200))
def test_random_bytes_as_feedback_never_fail(module_app: Flask, data: bytes) -> None:
    assert_feedback_answer(post_raw(module_app.test_client(), FEEDBACK, data))


@fuzz_settings(150)
@given(items=st.lists(st.one_of(feedback_items, json_values), min_size=0, max_size=6))
def test_random_feedback_items_never_fail(module_app: Flask, items: list[Any]) -> None:
    assert_feedback_answer(post_raw(module_app.test_client(), FEEDBACK, dumps({"feedback": items})))


@fuzz_settings(200)
@given(raw=mutated_requests(_BASE))
def test_mutations_of_valid_feedback_never_fail(module_app: Flask, raw: bytes) -> None:
    assert_feedback_answer(post_raw(module_app.test_client(), FEEDBACK, raw))


@fuzz_settings(30)
@given(count=st.sampled_from([999, 1000, 1001, 10_000]), unique=st.booleans())
def test_many_feedback_items_are_stored_or_refused_whole(module_app: Flask, count: int, unique: bool) -> None:
    """Up to the per-request cap every unique item is stored; beyond it the request is a 400."""
    items = []
    for i in range(count):
        item = copy.deepcopy(_VALID_ITEM)
        item["card"] = f"bulk-{unique}-{count}-{i if unique else 0}"
        items.append(item)
    response = post_raw(module_app.test_client(), FEEDBACK, dumps({"feedback": items}))
    assert_feedback_answer(response)
    if count <= 1000:
        assert response.status_code == 200
        assert response.get_json()["received"] == count
    else:
        assert response.status_code == 400
