"""Per-issuer feedback budget (issue 19, finding 7): too many items from one client is a 429, nothing stored."""

from __future__ import annotations

import pytest

from service.ratelimit import ItemBudget
from service.storage import get_storage
from tests.support import hook_body

SERVICE = "/cds-services/myositis-next-line"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_issuer_has_its_own_bucket_and_a_refused_request_spends_nothing() -> None:
    clock = Clock()
    budget = ItemBudget(60, clock=clock)  # one item a second
    assert budget.take("https://ehr-a.example", 60) is None
    assert budget.take("https://ehr-a.example", 1) == 1  # empty: one second until one item fits
    assert budget.take("https://ehr-b.example", 60) is None  # another client is not held back
    clock.now += 10
    assert budget.take("https://ehr-a.example", 11) == 1  # 10 refilled; the refused request took none
    assert budget.take("https://ehr-a.example", 10) is None


def test_the_bucket_refills_only_up_to_its_capacity() -> None:
    clock = Clock()
    budget = ItemBudget(5, clock=clock)
    clock.now += 3600
    assert budget.take("x", 5) is None
    assert budget.take("x", 1) is not None


def test_a_request_larger_than_the_whole_budget_never_fits() -> None:
    assert ItemBudget(5).take("x", 6) == 60


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ItemBudget(0)


def _overrides(cards: list[dict], n: int) -> dict:
    stamp = "2026-12-02T10:{:02d}:00Z"
    return {
        "feedback": [
            {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": stamp.format(i)} for i in range(n)
        ]
    }


def test_the_route_answers_429_with_retry_after_and_stores_nothing(make_app) -> None:
    client = make_app(FEEDBACK_ITEMS_PER_MINUTE=3).test_client()
    cards = client.post(SERVICE, json=hook_body()).get_json()["cards"]
    assert client.post(f"{SERVICE}/feedback", json=_overrides(cards, 3)).get_json() == {"received": 3, "stored": 3}
    refused = client.post(f"{SERVICE}/feedback", json=_overrides(cards, 2))
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too-many-requests"
    assert int(refused.headers["Retry-After"]) >= 1
    assert get_storage(client.application).feedback.count() == 3
