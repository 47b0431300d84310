"""feedback-report counts overrides per reason and per card kind, from feedback stored through the app."""

from __future__ import annotations

import json

from click.testing import CliRunner

from service.cli import main
from service.report import terminal_safe
from service.storage import FeedbackItem, get_storage
from tests.support import hook_body

SERVICE = "/cds-services/myositis-next-line"
SYSTEM = "urn:myositis-cds:CodeSystem:override-reason"
NEW_CODES = ("disease-controlled", "record-incomplete", "prior-responder", "cost-or-access", "remind-later")


def _override(card: dict, code: str | None, system: str = SYSTEM) -> dict:
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T10:00:00Z"}
    if code is not None:
        item["overrideReason"] = {"reason": {"system": system, "code": code}}
    return item


def _store_feedback(client, items_for) -> None:
    cards = client.post(SERVICE, json=hook_body()).get_json()["cards"]
    response = client.post(f"{SERVICE}/feedback", json={"feedback": items_for(cards)})
    assert response.status_code == 200, response.get_json()  # the issued cards were stored before the hook answered


def _report(client, *args: str) -> str:
    result = CliRunner().invoke(main, ["feedback-report", "--database", client.application.config["DATABASE"], *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cards_offer_the_new_override_reasons(client):
    cards = client.post(SERVICE, json=hook_body()).get_json()["cards"]
    offered = [{c["code"] for c in card["overrideReasons"]} for card in cards if card.get("overrideReasons")]
    assert offered and all(set(NEW_CODES) | {"contraindicated", "already-planned"} <= codes for codes in offered)


def test_overrides_are_counted_per_reason_and_card_kind_in_json_and_text(client):
    def items(cards):
        first, second = cards[0], cards[1]
        return (
            [_override(first, "disease-controlled") for _ in range(1)]  # same card, same stamp: stored once
            + [_override(first, "cost-or-access")]
            + [{**_override(first, "remind-later"), "outcomeTimestamp": f"2026-12-02T10:0{n}:00Z"} for n in range(3)]
            + [_override(second, "disease-controlled"), _override(second, None)]
        )

    _store_feedback(client, items)
    rows = {r["kind"]: r for r in json.loads(_report(client, "--json"))}
    kinds = list(rows)
    first_kind = next(k for k in kinds if rows[k]["override_reasons"].get("remind-later"))
    assert rows[first_kind]["override_reasons"] == {"cost-or-access": 1, "disease-controlled": 1, "remind-later": 3}
    assert rows[first_kind]["overridden"] == 5
    other = next(k for k in kinds if k != first_kind and rows[k]["overridden"])
    assert rows[other]["override_reasons"] == {"(no reason given)": 1, "disease-controlled": 1}

    text = _report(client)
    block = text.split("Overrides per reason:")[1]
    assert f"  {first_kind} (5 overridden)" in block
    assert "    3  remind-later - Remind me later" in block
    assert "    1  disease-controlled - Disease controlled: not refractory" in block
    assert "    1  (no reason given)" in block
    # the most frequent reason of a kind comes first
    first_block = block.split(f"  {first_kind} (5 overridden)")[1]
    assert first_block.index("remind-later") < first_block.index("cost-or-access")


def test_a_clients_hostile_reason_code_is_refused_and_never_printed_raw(client):
    hostile = "\x1b[2J\x1b]0;owned\x07evil\u202e\r\nnext-line 999"
    cards = client.post(SERVICE, json=hook_body()).get_json()["cards"]
    refused = client.post(
        f"{SERVICE}/feedback", json={"feedback": [_override(cards[0], hostile, system="https://elsewhere.example")]}
    )
    assert refused.status_code == 400 and "evil" not in refused.get_data(as_text=True)  # issue 19, finding 7
    # Rows stored before that rule (or by another writer) are still printed safely.
    storage = get_storage(client.application)
    item = FeedbackItem(
        cards[0]["uuid"], "overridden", (), "https://elsewhere.example", hostile, False, "2026-12-02T10:00:00Z"
    )
    storage.feedback.record("myositis-next-line", [item])
    text = _report(client)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\r" not in text
    assert "evil" in text and "(not one of our codes)" in text
    assert not any(line.startswith("next-line 999") for line in text.splitlines())
    raw = _report(client, "--json")
    assert "\x1b" not in raw and "\u202e" not in raw  # JSON escapes them
    assert any(hostile in r["override_reasons"] for r in json.loads(raw))  # kept faithfully, only escaped


def test_terminal_safe_strips_escapes_and_controls_and_bounds_length():
    assert terminal_safe("\x1b[31mred\x1b[0m") == "red"
    assert terminal_safe("a\x00b\x7fc\u200bd") == "a?b?c?d"
    assert len(terminal_safe("x" * 1000)) == 64
