"""Durable feedback storage and the per-card-kind report."""

from __future__ import annotations

import json
import multiprocessing

from click.testing import CliRunner

from service.cli import main
from service.store import FeedbackItem, IssuedCard, Store


def _item(card: str, outcome: str = "accepted", code: str | None = None, stamp: str = "2026-11-23T10:00:00Z") -> FeedbackItem:
    return FeedbackItem(card, outcome, ("s1",) if outcome == "accepted" else (), "https://x" if code else None, code,
                        False, stamp)


def test_feedback_survives_a_restart(tmp_path):
    path = tmp_path / "db.sqlite3"
    Store(path).record_feedback("svc", [_item("c1")])
    assert Store(path).feedback_count() == 1


def test_the_database_runs_in_wal_mode(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    with store._connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_report_gives_rates_per_card_kind(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    store.record_issued("svc", [IssuedCard("c1", "next-line"), IssuedCard("c2", "next-line"), IssuedCard("c3", "caution")])
    store.record_feedback("svc", [_item("c1"), _item("c2", "overridden", "contraindicated"), _item("c3", "overridden")])
    rows = {r.kind: r for r in store.report()}
    assert rows["next-line"].issued == 2 and rows["next-line"].acceptance_rate == 0.5
    assert rows["next-line"].override_reasons == {"contraindicated": 1}
    assert rows["caution"].override_rate == 1.0


def test_feedback_for_cards_we_never_issued_is_reported_as_unknown(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    store.record_feedback("svc", [_item("ghost")])
    assert [r.kind for r in store.report()] == ["unknown card"]


def test_feedback_report_command_prints_a_table_and_json(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = Store(path)
    store.record_issued("svc", [IssuedCard("c1", "next-line")])
    store.record_feedback("svc", [_item("c1")])
    runner = CliRunner()
    table = runner.invoke(main, ["feedback-report", "--database", str(path)])
    assert table.exit_code == 0 and "next-line" in table.output and "100%" in table.output
    as_json = runner.invoke(main, ["feedback-report", "--database", str(path), "--json"])
    assert json.loads(as_json.output)[0]["acceptance_rate"] == 1.0


def _writer(path: str, worker: int, count: int) -> None:
    store = Store(path)
    for n in range(count):
        store.record_feedback("svc", [_item(f"w{worker}-c{n}")])


def test_concurrent_writers_in_several_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "db.sqlite3")
    Store(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert Store(path).feedback_count() == 200


def test_issued_cards_queued_from_the_hook_path_are_written_by_the_background_writer(tmp_path):
    store = Store(tmp_path / "db.sqlite3")
    store.record_issued_later("svc", [IssuedCard(f"c{n}", "next-line") for n in range(50)])
    store.record_issued_later("svc", [IssuedCard("x", "caution")])
    assert store.flush(timeout=60)
    assert {r.kind: r.issued for r in store.report()} == {"caution": 1, "next-line": 50}


def test_feedback_report_knows_the_kind_of_cards_the_hook_issued(client):
    from service.store import get_store
    from tests.support import hook_body

    cards = client.post("/cds-services/myositis-next-line", json=hook_body()).get_json()["cards"]
    item = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00Z"}
    client.post("/cds-services/myositis-next-line/feedback", json={"feedback": [item]})
    with client.application.app_context():
        store = get_store()
        assert store.flush(timeout=60)
        rows = {r.kind: r for r in store.report()}
    assert rows["next-line"].overridden == 1 and rows["next-line"].issued == 1
