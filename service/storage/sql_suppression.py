"""The suppression store (issue 16) in SQL that both back-ends run; PostgreSQL's one-round-trip path (issue 17).

Apart from ``sql.py`` because it is the one store with a hot path of its own: every hook call that builds a
card reads, decides and writes here, under the patient's lock on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from service.storage.base import Show, StatesChanged, SuppressionState
from service.storage.sql import _INSERT_ISSUED, Database, R, Tx, _issued_row, _now, _queue_rows

__all__ = ["SqlSuppressionStore"]

_STATES = (
    "SELECT kind, fingerprint, shows_unanswered, suppressed_until, until_change, answered"
    " FROM suppression WHERE patient_key = ?"
)
_UPSERT_STATE = (
    "INSERT INTO suppression (patient_key, kind, fingerprint, shows_unanswered, suppressed_until,"
    " until_change, answered, suppressed_total, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (patient_key, kind) DO UPDATE SET fingerprint = excluded.fingerprint,"
    " shows_unanswered = excluded.shows_unanswered,"
    # An override stored by another instance between our read and this write must survive it.
    " suppressed_until = CASE WHEN suppression.fingerprint = excluded.fingerprint"
    "  AND suppression.suppressed_until > COALESCE(excluded.suppressed_until, '')"
    "  THEN suppression.suppressed_until ELSE excluded.suppressed_until END,"
    " until_change = excluded.until_change,"
    " answered = CASE WHEN suppression.fingerprint = excluded.fingerprint AND suppression.answered = 1"
    "  THEN 1 ELSE excluded.answered END,"
    " suppressed_total = suppression.suppressed_total + excluded.suppressed_total,"
    " updated_at = excluded.updated_at"
)
_PATIENT_LOCK = 0x73757070  # "supp": the lock namespace of one patient's suppression rows


def _patient_lock(patient_key: str) -> tuple[int, int]:
    """(namespace, key) for ``Database.transaction``: a 32-bit hash (a collision only makes two patients take turns)."""
    return _PATIENT_LOCK, int.from_bytes(hashlib.sha256(patient_key.encode()).digest()[:4], "big", signed=True)


_EXPECT_STATES = "SELECT myositis_expect_suppression(?, ?)"  # PostgreSQL only (migration 0005)


def _digest(rows: Iterable[Sequence[Any]]) -> str:
    """``myositis_suppression_digest`` (migrations/0005_suppression_digest.postgresql.sql) of these rows, here.

    Must give the server's text exactly, or every check fails and each call costs three round trips (a test
    compares the two). Rows as ``_STATES`` returns them: integers stay integers, a NULL date is ``-``, and
    kinds sort by their bytes (``COLLATE "C"``)."""
    lines = [
        "|".join((kind, fp, str(n), "-" if until is None else until, str(change), str(answered)))
        for kind, fp, n, until, change, answered in sorted(rows, key=lambda row: str(row[0]).encode())
    ]
    if not lines:
        return ""
    return hashlib.md5(",".join(lines).encode(), usedforsecurity=False).hexdigest()


_KNOWN_PATIENTS = 4096  # patient keys whose states a process keeps (a few hundred bytes each; no patient data)


def _as_states(rows: Iterable[Sequence[Any]]) -> dict[str, SuppressionState]:
    return {
        kind: SuppressionState(kind, fp, int(n), until, bool(change), bool(answered))
        for kind, fp, n, until, change, answered in rows
    }


class SqlSuppressionStore:
    """Where each card kind stands per patient key: read, decided and written in one transaction per hook call.

    On PostgreSQL, where each round trip crosses the network, a process also keeps the states it last read or
    wrote per patient key, with their digest (``_digest``, computed as the server computes it). A call decides from those (no states known: none
    stored) and sends one query string: BEGIN, the patient's lock, a check that the stored states still have that
    digest (``myositis_expect_suppression``, migration 0005), the writes, the new states and COMMIT. If another
    worker, instance or a feedback changed them, the check fails, the transaction is rolled back, and the call
    reads, decides and writes in two round trips. Either way the decision is made on the states stored when the
    write commits, under the patient's lock. A process that guesses wrong costs itself one round trip, never a count.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._known: dict[str, tuple[dict[str, SuppressionState], str]] = {}  # patient key -> (states, digest)
        self._known_lock = threading.Lock()  # request threads of one worker share it

    def states(self, patient_key: str) -> dict[str, SuppressionState]:
        with self._db.read("suppression") as tx:
            return self._states(tx, patient_key)

    def record_shows(self, service_id: str, patient_key: str, shows: Sequence[Show]) -> None:
        if not shows:
            return
        with self._db.transaction("suppression", durable=False) as tx:
            self._write(tx, service_id, patient_key, shows)

    def decide_and_record(
        self,
        service_id: str,
        patient_key: str,
        decide: Callable[[dict[str, SuppressionState]], tuple[R, Sequence[Show]]],
    ) -> R:
        # One transaction: the states read (or checked), the decision and the write. SQLite: BEGIN IMMEDIATE takes
        # the file's only write lock before the read. PostgreSQL: the patient's lock, then one round trip when the
        # states this process knows still hold, else three (the failed check, the read, the write). Either way a
        # second call for this patient (another worker or instance) waits and then sees what this one wrote: no
        # count is lost, no card missed in between.
        if not self._db.locks_keys:
            with self._db.transaction("suppression", durable=False) as tx:
                result, shows = decide(self._states(tx, patient_key))
                if shows:
                    self._write(tx, service_id, patient_key, shows)
            return result
        lock = _patient_lock(patient_key)
        states, digest = self._known.get(patient_key, ({}, ""))
        result, shows = decide(states)
        if shows:
            try:
                with self._db.transaction("suppression", durable=False, lock=lock) as tx:
                    tx.queue(_EXPECT_STATES, (patient_key, digest))
                    self._write_and_remember(tx, service_id, patient_key, shows)
                return result
            except StatesChanged:
                pass
        with self._db.transaction("suppression", durable=False, lock=lock) as tx:
            result, shows = decide(self._states(tx, patient_key))
            if shows:
                self._write_and_remember(tx, service_id, patient_key, shows)
        return result

    def _write_and_remember(self, tx: Tx, service_id: str, patient_key: str, shows: Sequence[Show]) -> None:
        """The writes, then the states they left (read with COMMIT, the transaction's last statement), kept."""
        self._write(tx, service_id, patient_key, shows)
        rows = tx.last_rows(_STATES, (patient_key,))
        if not rows:
            return
        known = (_as_states(rows), _digest(rows))
        with self._known_lock:
            if len(self._known) >= _KNOWN_PATIENTS and patient_key not in self._known:
                del self._known[next(iter(self._known))]  # the oldest first (dicts keep insertion order)
            self._known[patient_key] = known

    @staticmethod
    def _states(tx: Tx, patient_key: str) -> dict[str, SuppressionState]:
        return _as_states(tx.rows(_STATES, (patient_key,)))

    @staticmethod
    def _write(tx: Tx, service_id: str, patient_key: str, shows: Sequence[Show]) -> None:
        now = _now()
        states = [
            (
                patient_key,
                s.kind,
                s.fingerprint,
                s.shows_unanswered,
                s.suppressed_until,
                int(s.until_change),
                int(s.answered),
                int(show.suppressed),
                now,
            )
            for show in shows
            for s in [show.state]
        ]
        if len({row[1] for row in states}) == len(states):
            # One statement per table (fewer to send and to run, the same rows): an upsert may not name one row
            # twice, so kinds that repeat (never in one hook call today) go one statement per show below.
            _queue_rows(tx, _UPSERT_STATE, states)
            _queue_rows(
                tx, _INSERT_ISSUED, [_issued_row(service_id, sh.card, now) for sh in shows if sh.card is not None]
            )
            return
        for row, show in zip(states, shows, strict=True):
            tx.queue(_UPSERT_STATE, row)
            if show.card is not None:
                tx.queue(_INSERT_ISSUED, _issued_row(service_id, show.card, now))
