"""The scale-out back-end: PostgreSQL through psycopg 3 and its connection pool.

Chosen by ``MYOSITIS_CDS_DATABASE_URL=postgresql://...``. Each process (gunicorn worker) has its own
pool, opened after the fork. A lost connection, a server that does not answer or a pool with no free
connection within ``DATABASE_TIMEOUT_S`` raises :class:`StorageUnavailable`: the caller answers with a
JSON error and acknowledges nothing. The pool drops broken connections and reconnects by itself.
The connection string is never logged (it may carry a password).

A write transaction costs as few round trips as its reads allow (``_Tx``): statements whose result is not
read are sent with the next one that is, or with COMMIT, as one query string; statements with parameters are
prepared once per connection (``PREPARE``) and run with ``EXECUTE``. Session-level prepared statements need
a session per connection: behind a connection pooler use session pooling, not transaction pooling.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.adapt import Transformer
from psycopg_pool import ConnectionPool, PoolTimeout

from service import metrics
from service.storage.base import StatesChanged, StorageUnavailable

__all__ = ["PostgresDatabase"]

_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
_MIGRATION_LOCK_KEY = 0x6D796F73  # "myos": any fixed number, the same in every instance
_STATES_CHANGED = "MY001"  # raised by myositis_expect_suppression (migrations/0005_suppression_digest.postgresql.sql)


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _Prepared:
    """The statements prepared on each connection (``PREPARE``: parsed and planned once per session, not per call)."""

    def __init__(self) -> None:
        self._names: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[str]] = weakref.WeakKeyDictionary()
        self._sql: dict[str, tuple[str, str]] = {}  # statement with ? -> (name, "PREPARE name AS ... $1 ...")

    def lookup(self, sql: str) -> tuple[str, str]:
        found = self._sql.get(sql)
        if found is None:
            name = "myos_" + hashlib.sha256(sql.encode()).hexdigest()[:16]
            numbers = itertools.count(1)
            found = self._sql[sql] = (name, f"PREPARE {name} AS " + re.sub(r"\?", lambda _: f"${next(numbers)}", sql))
        return found

    def on(self, conn: psycopg.Connection[Any]) -> set[str]:
        return self._names.setdefault(conn, set())


class _Tx:
    """One transaction's statements. Those whose answer nobody reads (``queue``) wait on the client and go with
    the next statement that needs one, or with COMMIT: several statements in one query string, one round trip.

    Such a string cannot carry server-side parameters: a statement with parameters is prepared once per
    connection (``PREPARE``, sent with its first use) and run as ``EXECUTE name(values)``, the values bound
    on the client (psycopg's own quoting of each value as a literal, as ``ClientCursor.mogrify`` does it).
    """

    def __init__(self, conn: psycopg.Connection[Any], prepared: _Prepared) -> None:
        self._conn = conn
        self._cur = psycopg.ClientCursor(conn)
        # psycopg's quoting of one value as an SQL literal (what ``ClientCursor.mogrify`` does for each value).
        self._literal = Transformer(self._cur).as_literal
        self._queued: list[str] = []
        self._registry = prepared
        self._prepared = prepared.on(conn)
        self.preparing: set[str] = set()  # sent in this transaction, not yet known to have run
        self.committed = False  # by ``last_rows``

    def _send(self, sql: str, params: Sequence[Any], *after: str) -> int:
        """Everything queued, then ``sql``, then ``after``, as one query string; the number of statements sent."""
        self._queue(sql, params)
        statements, self._queued = [*self._queued, *after], []
        self._cur.execute("; ".join(statements))  # no parameters: one simple query, every statement in it
        self._prepared |= self.preparing
        self.preparing.clear()
        return len(statements)

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.ClientCursor[Any]:
        self._send(sql, params)
        while self._cur.nextset():  # to the last statement's result
            pass
        return self._cur

    def _queue(self, sql: str, params: Sequence[Any]) -> None:
        if not params:
            self._queued.append(sql)
            return
        name, prepare = self._registry.lookup(sql)
        if name not in self._prepared and name not in self.preparing:
            self._queued.append(prepare)
            self.preparing.add(name)
        values = b", ".join([b"NULL" if v is None else self._literal(v) for v in params]).decode()
        self._queued.append(f"EXECUTE {name}({values})")

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._execute(sql, params).fetchall())

    def queue(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._queue(sql, params)

    def last_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # The statement, then COMMIT, in the same string: the rows are the next-to-last result.
        for _ in range(self._send(sql, params, "COMMIT") - 2):
            self._cur.nextset()
        rows = list(self._cur.fetchall())
        self._cur.nextset()  # COMMIT's
        self.committed = True
        return rows

    def finish(self, last: str) -> None:
        if not self.committed:
            self._execute(last, ())


class _ReadTx:
    """Reads outside a transaction: one statement each, parameters bound by the server (never prepared: psycopg's
    own preparing is off, see ``PostgresDatabase.__init__``)."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(_pg(sql), tuple(params))
        return self._cur.rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(_pg(sql), tuple(params))
        return list(self._cur.fetchall())

    def queue(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.run(sql, params)

    def last_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.rows(sql, params)  # outside a transaction: nothing to commit


class PostgresDatabase:
    backend: str = "postgresql"
    migration_lock: str | None = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"
    locks_keys: bool = True

    def __init__(self, url: str, *, pool_size: int = 8, timeout_s: float = 5.0) -> None:
        self._prepared = _Prepared()
        # A transaction with ``lock`` waits for the key at most this long, and the server ends a session that
        # holds one idle (a stalled instance) after as long: another instance never waits on it for ever.
        wait = f"{max(1, int(timeout_s * 1000))}ms"
        self._lock_limits = {"lock_timeout": wait, "idle_in_transaction_session_timeout": wait}
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,  # longest wait for a connection from the pool
            # autocommit: every transaction is an explicit BEGIN ... COMMIT (``transaction()``), nothing left open.
            # prepare_threshold None: psycopg prepares nothing of its own. Once it has, its rollback() sends
            # DEALLOCATE ALL, which drops the statements ``_Prepared`` made too (the next EXECUTE then fails).
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout_s)), "prepare_threshold": None},
            open=False,
            name="myositis-cds",
        )
        try:
            self._pool.open(wait=True, timeout=timeout_s)
        except _UNAVAILABLE as exc:
            self._pool.close()
            raise StorageUnavailable("startup", self.backend, type(exc).__name__) from None
        atexit.register(self.close)

    @contextmanager
    def transaction(self, store: str, *, durable: bool = True, lock: tuple[int, int] | None = None) -> Iterator[_Tx]:
        # BEGIN and COMMIT are statements like the others (see ``_Tx``): BEGIN (and SET LOCAL) travel with the
        # first statement that needs an answer, COMMIT with the writes queued after it. A transaction that only
        # writes is one round trip; ``conn.transaction()`` would wait for BEGIN on its own, and each write.
        lost = False  # the server ended the session (e.g. idle_in_transaction_session_timeout): unavailable too
        try:
            with self._pool.connection() as conn:
                tx = _Tx(conn, self._prepared)
                tx.queue("BEGIN")
                settings = {} if durable else {"synchronous_commit": "off"}
                # Not durable: like SQLite's synchronous=NORMAL, a crash of the database server may lose the last
                # fraction of a second of these commits; a crash of ours loses nothing committed.
                if lock is not None:
                    settings.update(self._lock_limits)
                for name, value in settings.items():  # SET LOCAL: no result row to build and send, unlike set_config()
                    tx.queue(f"SET LOCAL {name} TO '{value}'")
                if lock is not None:
                    # Two 32-bit keys (namespace, key): a lock space apart from the migration lock's 64-bit one.
                    tx.queue("SELECT pg_advisory_xact_lock(?::integer, ?::integer)", lock)
                try:
                    yield tx
                    tx.finish("COMMIT")  # committed (or raised) before the caller goes on
                except BaseException:
                    lost = conn.broken
                    if tx.preparing:
                        # A PREPARE of the failed string may or may not have run: this connection is not reused.
                        conn.close()
                    with suppress(psycopg.Error):
                        conn.rollback()  # nothing if no transaction is open; a closed connection is dropped by the pool
                    raise
        except _UNAVAILABLE as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None
        except psycopg.Error as exc:
            if exc.sqlstate == _STATES_CHANGED:
                raise StatesChanged() from None  # rolled back above: the caller reads the states and decides again
            if not lost:
                raise
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    @contextmanager
    def read(self, store: str) -> Iterator[_ReadTx]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield _ReadTx(cur)
        except _UNAVAILABLE as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    def statement(self, store: str, sql: str, params: Sequence[Any] = ()) -> int:
        # Autocommit: the statement is its own transaction, committed (durably: the server's synchronous_commit)
        # when its answer arrives. One round trip; prepared once per connection, like the transactions' statements.
        try:
            with self._pool.connection() as conn:
                tx = _Tx(conn, self._prepared)
                try:
                    return tx.run(sql, params)
                except BaseException:
                    if tx.preparing:
                        conn.close()  # its PREPARE may or may not have run: this connection is not reused
                    raise
        except _UNAVAILABLE as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    def close(self) -> None:
        self._pool.close()
