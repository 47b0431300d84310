"""The stores, written once in SQL that SQLite (>= 3.24) and PostgreSQL (>= 9.5) both run.

``INSERT ... ON CONFLICT`` (upsert, insert-if-absent) and ``excluded.`` are the same in both, so each
store is one class over a :class:`Database`: a back-end only opens connections and runs transactions
(``service/storage/sqlite.py``, ``service/storage/postgres.py``). Placeholders are written ``?``; the
PostgreSQL back-end turns them into psycopg's ``%s``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from service.storage.base import FeedbackItem, IssuedCard

__all__ = [
    "Database",
    "Tx",
    "SqlFeedbackStore",
    "SqlIssuedCardStore",
    "SqlReplayStore",
    "SqlRxNavCache",
]

R = TypeVar("R")


class Tx(Protocol):
    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Execute one statement; the number of rows it changed."""
        ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def queue(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Execute one statement whose result nobody reads; PostgreSQL sends it with the next round trip
        (at the latest with COMMIT), so its errors surface there, still inside the transaction."""
        ...

    def last_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of the transaction's last statement; PostgreSQL sends COMMIT with it (one round trip), and the
        block must run nothing after it."""
        ...


class Database(Protocol):
    backend: str  # "sqlite" | "postgresql": metric label and migration dialect
    migration_lock: str | None  # statement that serialises migrations across processes, if BEGIN does not
    # True: ``transaction(lock=...)`` holds a lock on a key across processes and instances (PostgreSQL);
    # False: it has no such lock (SQLite, one host, where BEGIN IMMEDIATE serialises writers only).
    locks_keys: bool

    def transaction(
        self, store: str, *, durable: bool = True, lock: tuple[int, int] | None = None
    ) -> AbstractContextManager[Tx]:
        """A write transaction; ``durable=False`` may lose the last commits on a power cut, never on a killed process.

        ``lock`` (namespace, key), when ``locks_keys``: before anything else the transaction takes that key's lock,
        held until it ends; another transaction with the same key, on any instance, waits for it (a bounded time:
        past it, or if the holder stalls inside its transaction that long, one of them fails as unavailable).

        Raises :class:`~service.storage.base.StorageUnavailable` when the database cannot be had.
        """
        ...

    def read(self, store: str) -> AbstractContextManager[Tx]: ...

    def statement(self, store: str, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement as a durable transaction of its own; the number of rows it changed."""
        ...

    def close(self) -> None: ...


def _stamp(when: datetime) -> str:
    """The one timestamp format of every stored ``*_at`` column (UTC; compares as text)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return _stamp(datetime.now(UTC))


_INSERT_ISSUED = (
    "INSERT INTO issued_card (uuid, kind, service_id, issued_at, indicator, patient_key, fingerprint, reshown,"
    " knowledge_version, suggestions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)


def _issued_row(service_id: str, card: IssuedCard, now: str) -> tuple[Any, ...]:
    return (
        card.uuid,
        card.kind,
        service_id,
        now,
        card.indicator,
        card.patient_key,
        card.fingerprint,
        int(card.reshown),
        card.knowledge_version,
        " ".join(card.suggestions),
    )


_VALUES = " VALUES ("


def _queue_rows(tx: Tx, insert: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """``insert`` (written for one row: ``... VALUES (?, ...) ...``) for every row of ``rows`` in one statement."""
    if not rows:
        return
    head, tail = insert.split(_VALUES, 1)
    marks, rest = tail.split(")", 1)
    values = ", ".join(["(" + marks + ")"] * len(rows))
    tx.queue(f"{head} VALUES {values}{rest}", [value for row in rows for value in row])


_ISSUED_COLUMNS = "uuid, kind, indicator, patient_key, fingerprint, reshown, knowledge_version, suggestions"
_FIND_CHUNK = 500  # bound parameters per query (SQLite allows 32,766; PostgreSQL 65,535)


def _issued_card(row: tuple[Any, ...]) -> IssuedCard:
    u, kind, indicator, patient_key, fingerprint, reshown, version, suggestions = row
    return IssuedCard(u, kind, indicator, patient_key, fingerprint, bool(reshown), version, tuple(suggestions.split()))


class SqlIssuedCardStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, service_id: str, cards: Iterable[IssuedCard]) -> None:
        now = _now()
        rows = [_issued_row(service_id, c, now) for c in cards]
        if not rows:
            return
        # Not fsynced: a killed process keeps it (WAL / PostgreSQL's own log); feedback, which is, never waits on it.
        with self._db.transaction("issued", durable=False) as tx:
            for row in rows:
                tx.queue(_INSERT_ISSUED, row)

    def get(self, uuid: str) -> IssuedCard | None:
        with self._db.read("issued") as tx:
            found = tx.rows(f"SELECT {_ISSUED_COLUMNS} FROM issued_card WHERE uuid = ?", (uuid,))
        return _issued_card(found[0]) if found else None

    def find(self, service_id: str, uuids: Iterable[str], *, since: datetime) -> dict[str, IssuedCard]:
        wanted = sorted(set(uuids))
        out: dict[str, IssuedCard] = {}
        with self._db.read("issued") as tx:
            for start in range(0, len(wanted), _FIND_CHUNK):
                chunk = wanted[start : start + _FIND_CHUNK]
                marks = ", ".join("?" * len(chunk))
                rows = tx.rows(
                    f"SELECT {_ISSUED_COLUMNS} FROM issued_card"
                    f" WHERE service_id = ? AND issued_at >= ? AND uuid IN ({marks})",
                    (service_id, _stamp(since), *chunk),
                )
                out.update((row[0], _issued_card(row)) for row in rows)
        return out


# The card's row names the patient key, kind and fingerprint it was shown with: feedback acts on the
# suppression row only while that row still holds the same fingerprint (a later change already re-showed it).
_SAME_CARD = (
    "EXISTS (SELECT 1 FROM issued_card c WHERE c.uuid = ? AND c.patient_key = suppression.patient_key"
    " AND c.kind = suppression.kind AND c.fingerprint = suppression.fingerprint{extra})"
)
# ``answered`` is 1 once this card (this fingerprint) was overridden: a second override takes the longer period.
_SUPPRESS = (
    "UPDATE suppression SET suppressed_until = CASE WHEN answered = 1 THEN ? ELSE ? END,"
    " shows_unanswered = 0, answered = 1, updated_at = ? WHERE " + _SAME_CARD.format(extra="")
)
_ANSWERED = "UPDATE suppression SET shows_unanswered = 0, updated_at = ? WHERE " + _SAME_CARD.format(extra="")


class SqlFeedbackStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        service_id: str,
        items: Sequence[FeedbackItem],
        suppress_until: Mapping[str, tuple[str, str] | None] | None = None,
    ) -> int:
        now = _now()
        stored = 0
        # Durable (fsync / synchronous_commit) before the caller acknowledges anything.
        with self._db.transaction("feedback") as tx:
            for i in items:
                new = tx.run(
                    "INSERT INTO feedback (service_id, card_uuid, outcome, accepted_suggestions, override_system,"
                    " override_code, has_user_comment, outcome_timestamp, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        service_id,
                        i.card_uuid,
                        i.outcome,
                        json.dumps(sorted(i.accepted_suggestions)),
                        i.override_system,
                        i.override_code,
                        int(i.has_user_comment),
                        i.outcome_timestamp,
                        now,
                    ),
                )
                stored += new
                if new and suppress_until is not None and i.card_uuid in suppress_until:
                    until = suppress_until[i.card_uuid]
                    if until is None:
                        tx.run(_ANSWERED, (now, i.card_uuid))
                    else:
                        first, repeat = until
                        tx.run(_SUPPRESS, (repeat, first, now, i.card_uuid))
        return stored

    def count(self) -> int:
        with self._db.read("feedback") as tx:
            return int(tx.rows("SELECT COUNT(*) FROM feedback")[0][0])


class SqlReplayStore:
    """Each (issuer, jti) once until the token expires, across every process and instance on the database.

    One atomic upsert: the row is inserted if absent, or taken over only if its earlier use has
    expired; two instances racing on one jti cannot both change a row. The key is a SHA-256 of
    issuer and jti (fixed size; jti is scoped per issuer, RFC 7519 §4.1.7).
    """

    PRUNE_EVERY_S = 60.0

    def __init__(self, db: Database) -> None:
        self._db = db
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()

    def claim(self, issuer: str, jti: str, expires_at: int) -> bool:
        key = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        now = int(time.time())
        # One statement, atomic on its own: on PostgreSQL one round trip (autocommit), no BEGIN / COMMIT.
        fresh = (
            self._db.statement(
                "replay",
                "INSERT INTO jwt_jti (jti, expires_at) VALUES (?, ?)"
                " ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE jwt_jti.expires_at < ?",
                (key, expires_at, now),
            )
            == 1
        )
        self._maybe_prune(now)
        return fresh

    def prune(self, now: int) -> int:
        with self._db.transaction("replay", durable=False) as tx:
            return tx.run("DELETE FROM jwt_jti WHERE expires_at < ?", (now,))

    def _maybe_prune(self, now: int) -> None:
        # Expired rows go at most once a minute per process; claim() ignores them meanwhile anyway.
        if not self._prune_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._last_prune < self.PRUNE_EVERY_S:
                return
            self._last_prune = time.monotonic()
            self.prune(now)
        finally:
            self._prune_lock.release()


class SqlRxNavCache:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, rxcui: str, version: int) -> str | None:
        with self._db.read("rxnav") as tx:
            rows = tx.rows("SELECT answer FROM rxnav_cache WHERE rxcui = ? AND version = ?", (rxcui, version))
        return str(rows[0][0]) if rows else None

    def put(self, rxcui: str, version: int, answer: str) -> None:
        with self._db.transaction("rxnav", durable=False) as tx:
            tx.run(
                "INSERT INTO rxnav_cache (rxcui, version, answer, fetched_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (rxcui) DO UPDATE SET version = excluded.version, answer = excluded.answer,"
                " fetched_at = excluded.fetched_at",
                (rxcui, version, answer, int(time.time())),
            )
