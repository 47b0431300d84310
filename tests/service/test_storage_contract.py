"""One contract, both back-ends: every store behaves the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from typing import Any

import pytest

from service.storage import FeedbackItem, IssuedCard, Show, Storage, StorageUnavailable, SuppressionState, open_storage
from service.storage.migrate import migrations


@pytest.fixture
def open_db(database_settings: dict[str, Any]):
    """Open (and re-open) storage on the parametrised database; everything opened is closed after the test."""
    opened: list[Storage] = []

    def make() -> Storage:
        storage = open_storage(database=database_settings.get("DATABASE"), url=database_settings.get("DATABASE_URL"))
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        storage.close()


def _item(
    card: str, outcome: str = "accepted", code: str | None = None, stamp: str = "2026-11-23T10:00:00Z"
) -> FeedbackItem:
    return FeedbackItem(
        card, outcome, ("s1",) if outcome == "accepted" else (), "https://x" if code else None, code, False, stamp
    )


def test_feedback_survives_a_reopen_and_duplicates_count_once(open_db) -> None:
    assert open_db().feedback.record("svc", [_item("c1"), _item("c1"), _item("c2")]) == 2
    again = open_db()
    assert again.feedback.record("svc", [_item("c1")]) == 0
    assert again.feedback.count() == 2


def test_report_gives_shown_feedback_and_reasons_per_kind(open_db) -> None:
    s = open_db()
    s.issued.record("svc", [IssuedCard("c1", "next-line"), IssuedCard("c2", "next-line"), IssuedCard("c3", "safety")])
    s.feedback.record(
        "svc", [_item("c1"), _item("c2", "overridden", "contraindicated"), _item("c3", "overridden"), _item("ghost")]
    )
    rows = {r.kind: r for r in s.report()}
    assert rows["next-line"].issued == 2 and rows["next-line"].acceptance_rate == 0.5
    assert rows["next-line"].override_reasons == {"contraindicated": 1}
    assert rows["safety"].override_reasons == {"(no reason given)": 1}
    assert rows["unknown card"].accepted == 1
    assert s.issued.get("c3") == IssuedCard("c3", "safety") and s.issued.get("nope") is None


def test_replay_claim_is_insert_if_absent_and_expired_uses_are_reclaimed_and_pruned(open_db) -> None:
    replay = open_db().replay
    now = int(time.time())
    assert replay.claim("iss", "a", now + 100)
    assert not replay.claim("iss", "a", now + 100)
    assert replay.claim("other-iss", "a", now + 100)  # jti is scoped per issuer
    assert replay.claim("iss", "old", now - 10)
    assert replay.claim("iss", "old", now + 100)  # its earlier use had expired
    assert replay.claim("iss", "gone", now - 10)
    assert replay.prune(now) == 1


def test_concurrent_claims_of_one_jti_have_exactly_one_winner(open_db) -> None:
    stores = [open_db().replay for _ in range(4)]
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(store: Any) -> None:
        barrier.wait()
        results.append(store.claim("iss", "race", int(time.time()) + 100))

    threads = [threading.Thread(target=claim, args=(stores[n % 4],)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def _show(
    kind: str, fp: str, n: int = 1, *, card: str | None = None, indicator: str = "warning", suppressed: bool = False
) -> Show:
    issued = IssuedCard(card, kind, indicator, "pk", fp) if card else None
    return Show(SuppressionState(kind, fp, n), issued, suppressed)


def test_suppression_state_round_trips_and_counts_hidden_opens(open_db) -> None:
    s = open_db()
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", card="u1"), _show("safety", "g1", card="u2")])
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", 1, suppressed=True)])
    states = open_db().suppression.states("pk")
    assert states["next-line"] == SuppressionState("next-line", "f1", 1)
    assert set(states) == {"next-line", "safety"} and open_db().suppression.states("other") == {}
    assert {r.kind: r.suppressed for r in s.report()} == {"next-line": 1, "safety": 0}
    assert s.issued.get("u1") == IssuedCard("u1", "next-line", "warning", "pk", "f1")


def test_an_override_suppresses_only_the_fingerprint_it_was_given_on(open_db) -> None:
    s = open_db()
    s.suppression.record_shows(
        "svc", "pk", [_show("next-line", "f1", card="u1"), _show("urgent", "c1", card="u2", indicator="critical")]
    )
    s.feedback.record(
        "svc",
        [_item("u1", "overridden", "contraindicated"), _item("u2", "overridden")],
        {"u1": ("2026-12-23", "2027-03-23"), "u2": ("2026-12-23", "2027-03-23")},
    )
    states = s.suppression.states("pk")
    assert states["next-line"].suppressed_until == "2026-12-23" and states["next-line"].answered
    # a critical card too: the clinician's own override (only going unanswered never hides one)
    assert states["urgent"].suppressed_until == "2026-12-23"
    # a later card with another fingerprint: feedback on the old one no longer acts
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f2", card="u3")])
    s.feedback.record("svc", [_item("u1", "overridden", "cost-or-access")], {"u1": ("2027-01-23", "2027-03-23")})
    assert s.suppression.states("pk")["next-line"].suppressed_until is None


def test_an_override_stored_between_read_and_write_of_a_show_survives_it(open_db) -> None:
    s = open_db()
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", card="u1")])
    s.feedback.record("svc", [_item("u1", "overridden")], {"u1": ("2026-12-23", "2027-03-23")})
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", 2, card="u2")])  # decided before the override
    assert s.suppression.states("pk")["next-line"].suppressed_until == "2026-12-23"


def test_duplicate_feedback_does_not_extend_a_suppression(open_db) -> None:
    s = open_db()
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", card="u1")])
    s.feedback.record("svc", [_item("u1", "overridden")], {"u1": ("2026-12-23", "2027-03-23")})
    assert s.feedback.record("svc", [_item("u1", "overridden")], {"u1": ("2027-06-01", "2027-03-23")}) == 0
    assert s.suppression.states("pk")["next-line"].suppressed_until == "2026-12-23"


def test_rxnav_cache_keeps_one_answer_per_code_and_version(open_db) -> None:
    cache = open_db().rxnav
    assert cache.get("123", 1) is None
    cache.put("123", 1, '{"a": 1}')
    cache.put("123", 1, '{"a": 2}')
    assert open_db().rxnav.get("123", 1) == '{"a": 2}' and cache.get("123", 2) is None


def test_migrations_run_once_and_are_recorded(open_db, database_settings) -> None:
    s = open_db()
    open_db()
    with s.database.read("test") as tx:
        versions = [r[0] for r in tx.rows("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in migrations(s.backend)] == [1, 2, 3, 4, 5]


def _writer(settings: dict[str, Any], worker: int, count: int) -> None:
    storage = open_storage(database=settings.get("DATABASE"), url=settings.get("DATABASE_URL"))
    for n in range(count):
        storage.feedback.record("svc", [_item(f"w{worker}-c{n}")])
    storage.close()


def test_concurrent_writers_in_several_processes_lose_nothing(open_db, database_settings) -> None:
    open_db()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(database_settings, w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert open_db().feedback.count() == 160


def test_an_existing_sqlite_file_from_before_the_storage_layer_is_adopted(tmp_path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE issued_card (uuid TEXT PRIMARY KEY, kind TEXT NOT NULL, service_id TEXT NOT NULL,
            issued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
        CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, service_id TEXT NOT NULL, card_uuid TEXT NOT NULL,
            outcome TEXT NOT NULL, accepted_suggestions TEXT NOT NULL DEFAULT '[]', override_system TEXT,
            override_code TEXT, has_user_comment INTEGER NOT NULL DEFAULT 0, outcome_timestamp TEXT NOT NULL,
            received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
        CREATE TABLE jwt_jti (jti TEXT PRIMARY KEY, expires_at INTEGER);
        INSERT INTO issued_card (uuid, kind, service_id) VALUES ('old', 'next-line', 'svc');
        INSERT INTO feedback (service_id, card_uuid, outcome, outcome_timestamp) VALUES ('svc', 'old', 'accepted', 't');
    """)
    conn.close()
    s = open_storage(database=path)
    assert s.feedback.count() == 1 and s.issued.get("old") == IssuedCard("old", "next-line")
    s.feedback.record("svc", [_item("old", stamp="2026-11-24T10:00:00Z")])
    assert [r.accepted for r in s.report()] == [2]
    s.close()


def test_postgresql_connection_loss_raises_storage_unavailable_and_the_pool_recovers(postgres_url) -> None:
    from tests.conftest import postgres_refusing

    s = open_storage(url=postgres_url, timeout_s=1.0)
    with postgres_refusing(postgres_url):
        for _ in range(3):  # the first call may meet the killed connection, the next ones cannot connect
            with pytest.raises(StorageUnavailable) as raised:
                s.feedback.record("svc", [_item("lost")])
        assert "lost" not in str(raised.value) and "postgresql://" not in str(raised.value)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert s.feedback.record("svc", [_item("back")]) == 1
            break
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert s.feedback.count() == 1  # nothing from the failed calls
    s.close()


def test_a_database_url_that_is_not_postgresql_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="postgresql://") as raised:
        open_storage(url="mysql://user:secret@host/db")
    assert "secret" not in str(raised.value)


def test_an_issued_card_keeps_the_knowledge_version_it_was_built_from(open_db) -> None:
    s = open_db()
    s.issued.record("svc", [IssuedCard("kv1", "next-line", "info", "pk", "fp", False, "2026.12.02")])
    found = s.issued.get("kv1")
    assert found is not None and found.knowledge_version == "2026.12.02"


def test_a_second_override_of_the_same_card_takes_the_longer_period(open_db) -> None:
    s = open_db()
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", card="u1")])
    s.feedback.record("svc", [_item("u1", "overridden")], {"u1": ("2026-12-23", "2027-02-21")})
    assert s.suppression.states("pk")["next-line"].suppressed_until == "2026-12-23"
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", card="u9")])  # shown again, same facts
    s.feedback.record("svc", [_item("u9", "overridden")], {"u9": ("2027-01-22", "2027-03-23")})
    assert s.suppression.states("pk")["next-line"].suppressed_until == "2027-03-23"


def _count_show(card: str) -> Any:
    """A decision like the hook's: the next unanswered count from the state read, and one new card."""

    def decide(states: dict[str, SuppressionState]) -> tuple[str, list[Show]]:
        before = states.get("next-line")
        n = before.shows_unanswered + 1 if before else 1
        return card, [Show(SuppressionState("next-line", "f1", n), IssuedCard(card, "next-line", "info", "pk", "f1"))]

    return decide


def test_decide_and_record_reads_decides_and_records_every_card_shown(open_db) -> None:
    s = open_db()
    assert s.suppression.decide_and_record("svc", "pk", _count_show("u1")) == "u1"
    assert s.suppression.decide_and_record("svc", "pk", _count_show("u2")) == "u2"
    assert open_db().suppression.states("pk")["next-line"] == SuppressionState("next-line", "f1", 2)
    assert s.issued.get("u2") == IssuedCard("u2", "next-line", "info", "pk", "f1")
    # Nothing to record (every card hidden by a dependency, say) is not an error.
    assert s.suppression.decide_and_record("svc", "other", lambda states: (None, [])) is None


def test_a_decision_that_fails_records_nothing_and_the_store_goes_on(open_db) -> None:
    s = open_db()

    def broken(states: dict[str, SuppressionState]) -> tuple[None, list[Show]]:
        raise RuntimeError("decide failed")

    for _ in range(3):  # more often than a pool has idle connections: none is left inside a transaction
        with pytest.raises(RuntimeError):
            s.suppression.decide_and_record("svc", "pk", broken)
    assert s.suppression.states("pk") == {}
    assert s.suppression.decide_and_record("svc", "pk", _count_show("u1")) == "u1"
    assert s.issued.get("u1") is not None


def test_a_write_the_database_refuses_commits_nothing_of_its_transaction(open_db) -> None:
    s = open_db()
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", card="u1")])
    bad = Show(SuppressionState("safety", "g1", 1), IssuedCard("u2", None, "info", "pk", "g1"))  # type: ignore[arg-type]
    with pytest.raises(Exception):  # noqa: B017 - a NOT NULL violation: StorageUnavailable (SQLite), IntegrityError (psycopg)
        s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", 2), bad])
    assert s.suppression.states("pk")["next-line"].shows_unanswered == 1  # the first show of that call is gone too
    assert s.issued.get("u2") is None
    s.suppression.record_shows("svc", "pk", [_show("next-line", "f1", 2, card="u3")])  # the connection is usable
    assert s.suppression.states("pk")["next-line"].shows_unanswered == 2


def test_concurrent_calls_for_one_patient_from_two_instances_record_each_card_once(open_db) -> None:
    instances = [open_db(), open_db()]  # two app instances: two pools (PostgreSQL) or two connections (SQLite)
    per_thread, threads_per_instance = 15, 2
    barrier = threading.Barrier(2 * threads_per_instance)
    answered: list[str] = []
    errors: list[BaseException] = []

    def hook_calls(storage: Storage, name: str) -> None:
        barrier.wait()
        try:
            for n in range(per_thread):
                answered.append(storage.suppression.decide_and_record("svc", "pk", _count_show(f"{name}-{n}")))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=hook_calls, args=(instances[i % 2], f"t{i}")) for i in range(2 * threads_per_instance)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    total = 2 * threads_per_instance * per_thread
    s = open_db()
    assert len(answered) == len(set(answered)) == total
    assert all(s.issued.get(card) is not None for card in answered)  # every card answered is recorded, once
    assert [r.issued for r in s.report()] == [total]
    # Read, decision and write in one transaction (the patient's lock on PostgreSQL, the file's write lock on
    # SQLite): each call saw the one before it, on either instance or worker.
    assert s.suppression.states("pk")["next-line"].shows_unanswered == total


def test_a_patient_lock_is_waited_for_a_bounded_time_and_a_stalled_holder_loses_it(postgres_url) -> None:
    from service.storage.sql_suppression import _patient_lock

    # DATABASE_TIMEOUT_S: the waiter's bounds its lock wait (0.5 s), the holder's how long it may stall (2 s).
    stalled, other = open_storage(url=postgres_url, timeout_s=2.0), open_storage(url=postgres_url, timeout_s=0.5)
    try:
        with pytest.raises(StorageUnavailable):
            with stalled.database.transaction("test", durable=False, lock=_patient_lock("pk")) as tx:
                tx.rows("SELECT 1")  # the lock is taken now
                # another instance waits for it a bounded time, then fails (the hook then fails open)
                with pytest.raises(StorageUnavailable):
                    other.suppression.decide_and_record("svc", "pk", _count_show("u1"))
                # the holder stalls past the limit inside its transaction: the server ends its session
                time.sleep(2.5)
        assert other.suppression.decide_and_record("svc", "pk", _count_show("u2")) == "u2"
        assert other.issued.get("u1") is None and other.issued.get("u2") is not None
    finally:
        stalled.close()
        other.close()


def test_postgresql_transactions_set_what_they_promise_and_only_for_themselves(postgres_url) -> None:
    s = open_storage(url=postgres_url, pool_size=1, timeout_s=3.0)  # one connection: every block below reuses it
    try:
        show = "SELECT current_setting('synchronous_commit'), current_setting('lock_timeout')"
        with s.database.transaction("test") as tx:
            assert tx.rows(show) == [("on", "0")]
        with s.database.transaction("test", durable=False, lock=(1, 2)) as tx:
            assert tx.rows(show) == [("off", "3s")]
        with s.database.read("test") as tx:
            assert tx.rows(show) == [("on", "0")]  # SET LOCAL: gone with the transaction
    finally:
        s.close()


def test_postgresql_decides_from_the_states_it_last_knew_in_one_round_trip_and_rereads_them_when_changed(
    postgres_url, monkeypatch
) -> None:
    """Issue 17: a worker that knows a patient's states sends lock, check, writes and COMMIT at once; when another
    instance or a feedback changed them, the check fails, nothing of that attempt is kept, and the call reads them."""
    import psycopg

    trips: list[str] = []
    real_execute = psycopg.ClientCursor.execute

    def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(str(query))
        return real_execute(self, query, *args, **kwargs)

    a, b = open_storage(url=postgres_url), open_storage(url=postgres_url)  # two instances, one database
    seen: list[dict[str, SuppressionState]] = []

    def call(storage: Storage, card: str) -> int:
        decide = _count_show(card)

        def recording(states: dict[str, SuppressionState]) -> Any:
            seen.append(dict(states))
            return decide(states)

        trips.clear()
        monkeypatch.setattr(psycopg.ClientCursor, "execute", counted)
        try:
            assert storage.suppression.decide_and_record("svc", "pk", recording) == card
        finally:
            monkeypatch.setattr(psycopg.ClientCursor, "execute", real_execute)
        return len(trips)

    try:
        assert call(a, "u1") == 1  # a patient no state is known of: "none stored" is checked, and it holds
        assert call(a, "u2") == 1  # the states a itself wrote
        assert call(b, "u3") == 3  # b knew nothing: its check fails, it reads (n=2), writes n=3
        assert seen[-1]["next-line"].shows_unanswered == 2
        assert call(a, "u4") == 3  # a's states are stale (n=2 there, 3 stored): read again
        assert seen[-1]["next-line"].shows_unanswered == 3
        b.feedback.record("svc", [_item("u4", "overridden")], {"u4": ("2026-12-23", "2027-03-23")})
        assert call(a, "u5") == 3  # the override, stored by the other instance, is seen before deciding
        assert seen[-1]["next-line"].suppressed_until == "2026-12-23"
        assert a.suppression.states("pk")["next-line"].shows_unanswered == 1  # the override restarted the count
        assert [a.issued.get(u) is not None for u in ("u1", "u2", "u3", "u4", "u5")] == [True] * 5
        assert [r.issued for r in a.report()] == [5]  # no failed attempt left a card behind
    finally:
        a.close()
        b.close()


def test_a_migration_splits_at_semicolons_outside_dollar_quoted_bodies() -> None:
    from service.storage.migrate import Migration

    sql = (
        "-- a comment; with a semicolon\nCREATE TABLE t (a TEXT);\n"
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n    PERFORM 1;\n    PERFORM 2;\nEND\n$$;\n"
        "CREATE INDEX i ON t (a)"
    )
    assert list(Migration(9, "x", sql).statements()) == [
        "CREATE TABLE t (a TEXT)",
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n    PERFORM 1;\n    PERFORM 2;\nEND\n$$",
        "CREATE INDEX i ON t (a)",
    ]
    with pytest.raises(RuntimeError, match="not closed"):
        list(Migration(9, "x", "CREATE FUNCTION f() AS $$ BEGIN").statements())


def test_the_worker_computes_the_servers_digest_of_suppression_states(postgres_url) -> None:
    """The one-round-trip check compares the server's digest with the worker's: they must be the same text."""
    from service.storage.sql_suppression import _STATES, _digest

    s = open_storage(url=postgres_url)
    try:
        s.suppression.record_shows(
            "svc",
            "pk",
            [
                _show("safety-x", "g1 g2", 3),
                _show("safety", "f1", card="u1"),
                Show(SuppressionState("urgent", "c1", 0, "2027-01-02", True, True), None, True),
            ],
        )
        for key in ("pk", "nobody"):
            with s.database.read("test") as tx:
                server = tx.rows("SELECT myositis_suppression_digest(?)", (key,))[0][0]
                assert _digest(tx.rows(_STATES, (key,))) == server
        assert server == ""  # no states stored
    finally:
        s.close()


def test_a_rolled_back_transaction_leaves_every_prepared_statement_usable(postgres_url) -> None:
    """psycopg's rollback() sends DEALLOCATE ALL once it has prepared statements of its own, which dropped ours
    too: after a check that failed (another instance had changed the states) the next statement on that
    connection got InvalidSqlStatementName, a 500 in the two-instance test."""
    a = open_storage(url=postgres_url, pool_size=1)  # one connection: every call below reuses it
    b = open_storage(url=postgres_url)
    try:
        now = int(time.time())
        for n in range(8):  # a repeated one-statement write: psycopg would prepare it itself after 5
            assert a.replay.claim("iss", f"jti-{n}", now + 100)
        for card in ("u1", "u2"):  # every statement of the hook's path prepared on a's connection
            assert a.suppression.decide_and_record("svc", "pk", _count_show(card)) == card
        assert b.suppression.decide_and_record("svc", "pk", _count_show("u3")) == "u3"
        # a's check fails (b changed the states), its transaction is rolled back, and it reads and writes again
        assert a.suppression.decide_and_record("svc", "pk", _count_show("u4")) == "u4"
        assert a.suppression.decide_and_record("svc", "pk", _count_show("u5")) == "u5"
        assert a.replay.claim("iss", "jti-after", now + 100)
        assert a.suppression.states("pk")["next-line"].shows_unanswered == 5
    finally:
        a.close()
        b.close()
