"""Suppression (issue 16) through the real routes: two app instances sharing one database, both back-ends."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.changes import CHANGES
from service.storage import SuppressionState
from service.suppression import Policy, decide, patient_key
from tests.support import prefetch_from_resources, resources_of

SERVICE = "/cds-services/myositis-next-line"
SYSTEM = "urn:myositis-cds:CodeSystem:override-reason"
TODAY = date(2026, 11, 23)


@pytest.fixture
def two_apps(make_app, database_settings):
    """Two instances of the service on one shared database (as behind a load balancer)."""
    return make_app(**database_settings).test_client(), make_app(**database_settings).test_client()


def _fire(client: Any, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pid = next(r for r in resources if r["resourceType"] == "Patient")["id"]
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": pid},
        "prefetch": prefetch_from_resources(resources),
    }
    response = client.post(SERVICE, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["cards"]


def _kinds(client: Any, cards: list[dict[str, Any]]) -> dict[str, str]:
    """Card uuid -> kind, from what the service recorded (the kind is not on the wire)."""
    from service.storage import get_storage

    store = get_storage(client.application)
    return {c["uuid"]: store.issued.get(c["uuid"]).kind for c in cards}


def _feedback(client: Any, card: dict[str, Any], code: str | None = "cost-or-access") -> None:
    item: dict[str, Any] = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    if code:
        item["overrideReason"] = {"reason": {"system": SYSTEM, "code": code}}
    response = client.post(f"{SERVICE}/feedback", json={"feedback": [item]})
    assert response.status_code == 200 and response.get_json()["stored"] == 1, response.get_json()


def _set_today(*clients: Any, day: date) -> None:
    for client in clients:
        client.application.extensions["myositis_engine"].pinned_today = day


def _override_main_card(a: Any, b: Any, resources: list[dict[str, Any]], code: str = "cost-or-access") -> str:
    cards = _fire(a, resources)
    main = next(c for c in cards if c["indicator"] != "critical")
    kind = _kinds(a, [main])[main["uuid"]]
    _feedback(b, main, code)  # feedback reaches the other instance
    return kind


def test_an_override_through_one_instance_is_honoured_by_the_other(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("reference-dm")
    kind = _override_main_card(a, b, resources)
    for client in (a, b):
        shown = _kinds(client, _fire(client, resources))
        # hidden, and the safety card that checks its drafts with it (it is never shown alone)
        assert kind not in shown.values() and "safety" not in shown.values()


def test_a_safety_card_overridden_alone_leaves_the_main_card_shown(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("reference-dm")
    cards = _fire(a, resources)
    safety = next(c for c in cards if _kinds(a, [c])[c["uuid"]] == "safety")
    _feedback(b, safety)
    shown = _kinds(a, _fire(a, resources)).values()
    assert "safety" not in shown and "next-line" in shown


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_each_material_change_shows_the_card_again(two_apps, change: str) -> None:
    """Fire, override, fire again: hidden; change the record: shown again, at the next chart open."""
    a, b = two_apps
    patient = "dm-rituximab-recent" if change == "CK into a higher band" else "reference-dm"
    resources = resources_of(patient)
    kind = _override_main_card(a, b, resources)
    assert kind not in _kinds(b, _fire(b, resources)).values()
    changed = CHANGES[change](resources, TODAY)
    assert changed is not None
    assert kind in _kinds(a, _fire(a, changed)).values()


def test_the_override_period_ends_after_30_days_and_remind_later_after_7(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("reference-dm")
    kind = _override_main_card(a, b, resources)
    _set_today(a, b, day=TODAY + timedelta(days=29))
    assert kind not in _kinds(a, _fire(a, resources)).values()
    _set_today(a, b, day=TODAY + timedelta(days=30))
    assert kind in _kinds(b, _fire(b, resources)).values()

    _set_today(a, b, day=TODAY)
    other = resources_of("polymyositis")
    kind = _override_main_card(a, b, other, code="remind-later")
    _set_today(a, b, day=TODAY + timedelta(days=6))
    assert kind not in _kinds(a, _fire(a, other)).values()
    _set_today(a, b, day=TODAY + timedelta(days=7))
    assert kind in _kinds(a, _fire(a, other)).values()


def test_the_same_unchanged_card_overridden_twice_stays_hidden_for_the_longer_period(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("reference-dm")
    kind = _override_main_card(a, b, resources)
    _set_today(a, b, day=TODAY + timedelta(days=30))
    again = next(c for c in _fire(a, resources) if _kinds(a, [c])[c["uuid"]] == kind)
    _feedback(b, again)  # the clinician says no again to the same facts
    _set_today(a, b, day=TODAY + timedelta(days=30 + 89))
    assert kind not in _kinds(a, _fire(a, resources)).values()
    _set_today(a, b, day=TODAY + timedelta(days=30 + 90))
    assert kind in _kinds(b, _fire(b, resources)).values()


@pytest.mark.parametrize("code", ["contraindicated", "specialist-managing", "disease-controlled"])
def test_a_standing_reason_holds_the_card_for_the_longer_period_from_the_first_override(two_apps, code) -> None:
    """The clinician said why the advice does not fit this patient: not asked again next month with nothing new."""
    a, b = two_apps
    resources = resources_of("reference-dm")
    kind = _override_main_card(a, b, resources, code=code)
    _set_today(a, b, day=TODAY + timedelta(days=89))
    assert kind not in _kinds(a, _fire(a, resources)).values()
    changed = CHANGES["new failed trial"](resources, TODAY + timedelta(days=89))
    assert changed is not None
    assert kind in _kinds(b, _fire(b, changed)).values()  # news still shows it at once


def test_a_standing_reason_ends_after_the_longer_period(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("reference-dm")
    kind = _override_main_card(a, b, resources, code="patient-declined")
    _set_today(a, b, day=TODAY + timedelta(days=90))
    assert kind in _kinds(a, _fire(a, resources)).values()


def test_remind_later_never_gives_the_long_period(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("polymyositis")
    kind = _override_main_card(a, b, resources, code="remind-later")
    _set_today(a, b, day=TODAY + timedelta(days=7))
    again = next(c for c in _fire(a, resources) if _kinds(a, [c])[c["uuid"]] == kind)
    _feedback(b, again, code="remind-later")
    _set_today(a, b, day=TODAY + timedelta(days=14))
    assert kind in _kinds(a, _fire(a, resources)).values()


def test_a_card_left_unanswered_is_demoted_then_hidden_until_it_changes(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("reference-dm")
    seen = []
    for n in range(7):
        cards = _fire((a, b)[n % 2], resources)
        seen.append({_kinds(a, [c])[c["uuid"]]: c["indicator"] for c in cards})
    assert [s.get("safety") for s in seen] == ["warning"] * 3 + ["info"] * 3 + [None]
    changed = CHANGES["ILD found"](resources, TODAY)
    assert {_kinds(a, [c])[c["uuid"]]: c["indicator"] for c in _fire(b, changed)}.get("safety") == "warning"


def test_a_critical_card_is_never_demoted_or_hidden_when_unanswered(two_apps) -> None:
    a, _ = two_apps
    resources = resources_of("dm-mda5-ild-new")
    for _ in range(8):
        assert [c["indicator"] for c in _fire(a, resources) if c["indicator"] == "critical"] == ["critical"]


def test_a_critical_card_the_clinician_overrode_waits_for_the_override_period(two_apps) -> None:
    a, b = two_apps
    resources = resources_of("dm-mda5-ild-new")
    first = [c for c in _fire(a, resources) if c["indicator"] == "critical"]
    assert first
    _feedback(b, first[0], code="already-planned")
    assert not [c for c in _fire(a, resources) if c["indicator"] == "critical"]
    _set_today(a, b, day=TODAY + timedelta(days=30))
    assert [c["indicator"] for c in _fire(a, resources) if c["indicator"] == "critical"] == ["critical"]


def test_override_reasons_round_trip_into_the_report(two_apps, make_app) -> None:
    from service.storage import get_storage

    a, b = two_apps
    for code in ("contraindicated", "remind-later", None):
        resources = resources_of("polymyositis")
        _set_today(a, b, day=TODAY + timedelta(days=100 * (1 + ["contraindicated", "remind-later", None].index(code))))
        _override_main_card(a, b, resources, code=code)
    rows = {r.kind: r for r in get_storage(a.application).report()}
    reasons = {k: v for r in rows.values() for k, v in r.override_reasons.items()}
    assert reasons == {"contraindicated": 1, "remind-later": 1, "(no reason given)": 1}


def test_the_database_holds_no_patient_data(make_app, tmp_path: Path) -> None:
    """Keys, fingerprints and rows: no id, name, birth date or identifier of any example patient."""
    from tests.conftest import _example_phi

    client = make_app(DATABASE=str(tmp_path / "phi.sqlite3")).test_client()
    for name in ("reference-dm", "dm-ild", "dm-pregnant", "polymyositis"):
        cards = _fire(client, resources_of(name))
        _feedback(client, cards[0], "patient-declined")
    conn = sqlite3.connect(tmp_path / "phi.sqlite3")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    leaks = sorted(v for v in _example_phi() if v in dump)
    assert leaks == [] and "suppression" in dump


def test_patient_keys_are_hmacs_that_depend_on_the_secret() -> None:
    assert patient_key(b"one", "example-dm-001") != patient_key(b"two", "example-dm-001")
    assert "example-dm-001" not in patient_key(b"one", "example-dm-001")
    assert len(patient_key(b"one", "x")) == 64


def test_without_a_configured_secret_one_is_generated_once_into_the_instance_folder(tmp_path: Path) -> None:
    from flask import Flask

    from service import storage, suppression

    keys = []
    for _ in range(2):
        app = Flask("x", instance_path=str(tmp_path / "instance"))
        app.config.update(
            DATABASE=str(tmp_path / "s.sqlite3"),
            PATIENT_KEY_SECRET=None,
            SUPPRESS_DAYS=30,
            REMIND_LATER_DAYS=7,
            DEMOTE_AFTER_SHOWS=3,
            SUPPRESS_AFTER_SHOWS=6,
            REPEAT_SUPPRESS_DAYS=90,
        )
        storage.init_app(app)
        suppression.init_app(app)
        keys.append(app.extensions["myositis_suppression"].secret)
    secret_file = tmp_path / "instance" / "patient-key-secret"
    assert keys[0] == keys[1] and len(keys[0]) == 64 and secret_file.stat().st_mode & 0o077 == 0


def test_postgresql_needs_a_configured_secret(make_app, postgres_url) -> None:
    with pytest.raises(ValueError, match="PATIENT_KEY_SECRET"):
        make_app(DATABASE_URL=postgres_url, PATIENT_KEY_SECRET=None)


def test_decide_is_pure_and_follows_the_policy() -> None:
    from cards.models import Card, Source

    card = Card("safety", "u", "Check before starting", "warning", Source("x"), fingerprint="f1")
    policy = Policy(demote_after=1, suppress_after=2)
    hidden = SuppressionState("safety", "f1", 0, suppressed_until="2026-12-01")
    assert decide([card], {"safety": hidden}, today=TODAY, policy=policy, key="k")[0].card is None
    after = decide([card], {"safety": hidden}, today=date(2026, 12, 1), policy=policy, key="k")[0]
    assert after.card is not None and after.card.indicator == "warning"  # period over: shown (second show)
    twice = SuppressionState("safety", "f1", 1)
    assert decide([card], {"safety": twice}, today=TODAY, policy=policy, key="k")[0].card.indicator == "info"
    assert decide([card], {"safety": SuppressionState("safety", "f1", 2)}, today=TODAY, policy=policy, key="k")[
        0
    ].show.state.until_change
    moved = decide(
        [card], {"safety": SuppressionState("safety", "f0", 9, until_change=True)}, today=TODAY, policy=policy, key="k"
    )[0]
    assert moved.card is card and moved.reshown and moved.show.state == SuppressionState("safety", "f1", 1)


def test_a_storage_fault_on_feedback_is_a_json_503_and_the_hook_still_answers(make_app, postgres_url) -> None:
    from tests.conftest import postgres_refusing

    client = make_app(DATABASE_URL=postgres_url, DATABASE_TIMEOUT_S=1.0).test_client()
    cards = _fire(client, resources_of("reference-dm"))
    with postgres_refusing(postgres_url):
        item = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
        response = client.post(f"{SERVICE}/feedback", json={"feedback": [item]})
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.get_json()["error"] == "storage-unavailable"
        assert len(_fire(client, resources_of("reference-dm"))) == len(cards)  # fail open: advice never hidden
        assert client.get("/readyz").status_code == 503
