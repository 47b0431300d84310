"""Durable storage in one embedded SQLite file (WAL): issued cards and feedback.

Issued cards are kept (uuid, kind, service, time; no patient data) so
that feedback, which names only a card uuid, can be reported per card kind.
Each write is its own short transaction so several gunicorn workers can
share the file. Feedback commits with ``synchronous=FULL``: it must survive a
``kill -9`` of the server and a power cut alike.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

__all__ = ["init_app", "Store", "get_store", "FeedbackItem", "IssuedCard", "KindReport"]

log = logging.getLogger("myositis_cds.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS issued_card (
    uuid        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    service_id  TEXT NOT NULL,
    issued_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS feedback (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    service_id           TEXT NOT NULL,
    card_uuid            TEXT NOT NULL,
    outcome              TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions TEXT NOT NULL DEFAULT '[]',
    override_system      TEXT,
    override_code        TEXT,
    has_user_comment     INTEGER NOT NULL DEFAULT 0,
    outcome_timestamp    TEXT NOT NULL,
    received_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
-- NULLs are distinct in a plain UNIQUE constraint, so the reason is folded to '' for de-duplication.
CREATE UNIQUE INDEX IF NOT EXISTS feedback_once ON feedback
    (service_id, card_uuid, outcome, accepted_suggestions, COALESCE(override_system, ''), COALESCE(override_code, ''),
     outcome_timestamp);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback (card_uuid);
"""


@dataclass(frozen=True, slots=True)
class IssuedCard:
    uuid: str
    kind: str


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    card_uuid: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    has_user_comment: bool  # the comment itself is free text and may hold PHI: not stored
    outcome_timestamp: str


@dataclass(frozen=True, slots=True)
class KindReport:
    kind: str
    issued: int
    feedback: int
    accepted: int
    overridden: int
    override_reasons: dict[str, int]

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.feedback if self.feedback else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.feedback if self.feedback else None


class _Pending:
    """Counts queued rows so ``flush`` can wait for the writer."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def add(self, n: int) -> None:
        with self._cond:
            self._count += n

    def release_many(self, n: int) -> None:
        with self._cond:
            self._count -= n
            if self._count <= 0:
                self._cond.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count <= 0, timeout)


class Store:
    """Thread-safe access to the SQLite file; one connection per thread."""

    BATCH_WINDOW_S = 0.2  # issued-card records wait at most this long before their commit

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._queue: queue.SimpleQueue[list[tuple[str, str, str]]] = queue.SimpleQueue()
        self._pending = _Pending()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._flush_now = threading.Event()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        yield conn

    @contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            # FULL fsyncs every commit (feedback: survives power loss). NORMAL in WAL mode still
            # survives a killed process, and spares the hook's hot path an fsync per call.
            conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def record_issued(self, service_id: str, cards: Iterable[IssuedCard]) -> None:
        rows = [(c.uuid, c.kind, service_id) for c in cards]
        if rows:
            self._insert_issued(rows)

    def record_issued_later(self, service_id: str, cards: Iterable[IssuedCard]) -> None:
        """Queue issued-card records for a background writer: the hook's hot path takes no SQLite lock.

        Records are committed in batches (``BATCH_WINDOW_S``): a record still queued when the
        process is killed is lost; feedback for that card is then reported as "unknown card". Feedback itself is always written before it is acknowledged.
        """
        rows = [(c.uuid, c.kind, service_id) for c in cards]
        if not rows:
            return
        if self._writer is None or not self._writer.is_alive():
            self._start_writer()
        self._pending.add(len(rows))
        self._queue.put(rows)

    def _start_writer(self) -> None:
        with self._writer_lock:
            if self._writer is not None and self._writer.is_alive():
                return
            # Started lazily, so a process that forks after create_app (gunicorn) gets its own thread.
            self._writer = threading.Thread(target=self._write_forever, name="issued-card-writer", daemon=True)
            self._writer.start()
            atexit.register(self.flush)

    def _write_forever(self) -> None:
        while True:
            rows = list(self._queue.get())
            # Let a burst of hook calls queue up before one commit, instead of one commit per call;
            # the writer sleeps through the window rather than waking for every record queued.
            self._flush_now.wait(self.BATCH_WINDOW_S)
            while True:  # whatever else is already waiting goes in the same transaction
                try:
                    rows.extend(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._insert_issued(rows)
            except sqlite3.Error:
                log.warning("issued-card records not stored", extra={"count": len(rows)})
            finally:
                self._pending.release_many(len(rows))

    def flush(self, timeout: float = 5.0) -> bool:
        """Write queued issued-card records now; True once they are stored, False on time-out."""
        self._flush_now.set()
        try:
            return self._pending.wait_empty(timeout)
        finally:
            self._flush_now.clear()

    def _insert_issued(self, rows: list[tuple[str, str, str]]) -> None:
        with self._transaction(durable=False) as conn:
            conn.executemany("INSERT OR IGNORE INTO issued_card (uuid, kind, service_id) VALUES (?, ?, ?)", rows)

    def record_feedback(self, service_id: str, items: Iterable[FeedbackItem]) -> int:
        """Store feedback; exact duplicates (same card, outcome, suggestions, time) count once."""
        import json

        rows = [
            (service_id, i.card_uuid, i.outcome, json.dumps(sorted(i.accepted_suggestions)), i.override_system,
             i.override_code, int(i.has_user_comment), i.outcome_timestamp)
            for i in items
        ]
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO feedback (service_id, card_uuid, outcome, accepted_suggestions, override_system,"
                " override_code, has_user_comment, outcome_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    def feedback_count(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def report(self) -> list[KindReport]:
        with self._connection() as conn:
            issued = dict(conn.execute("SELECT kind, COUNT(*) FROM issued_card GROUP BY kind").fetchall())
            rows = conn.execute(
                "SELECT COALESCE(c.kind, 'unknown card'), f.outcome, f.override_code, COUNT(*)"
                " FROM feedback f LEFT JOIN issued_card c ON c.uuid = f.card_uuid"
                " GROUP BY 1, 2, 3"
            ).fetchall()
        stats: dict[str, dict[str, Any]] = {}
        for kind in issued:
            stats[kind] = {"accepted": 0, "overridden": 0, "reasons": {}}
        for kind, outcome, reason, count in rows:
            entry = stats.setdefault(kind, {"accepted": 0, "overridden": 0, "reasons": {}})
            entry[outcome] += count
            if outcome == "overridden":
                key = reason or "(no reason given)"
                entry["reasons"][key] = entry["reasons"].get(key, 0) + count
        return [
            KindReport(
                kind=kind,
                issued=issued.get(kind, 0),
                feedback=s["accepted"] + s["overridden"],
                accepted=s["accepted"],
                overridden=s["overridden"],
                override_reasons=dict(sorted(s["reasons"].items())),
            )
            for kind, s in sorted(stats.items())
        ]


def init_app(app: Flask) -> None:
    path = app.config.get("DATABASE") or str(Path(app.instance_path) / "myositis-cds.sqlite3")
    app.config["DATABASE"] = path
    app.extensions["myositis_store"] = Store(path)


def get_store() -> Store:
    store: Store = current_app.extensions["myositis_store"]
    return store
