"""The scale-out back-end: PostgreSQL through psycopg 3 and its connection pool.

Chosen by ``MYOSITIS_CDS_DATABASE_URL=postgresql://...``. Each process (gunicorn worker) has its own
pool, opened after the fork. A lost connection, a server that does not answer or a pool with no free
connection within ``DATABASE_TIMEOUT_S`` raises :class:`StorageUnavailable`: the caller answers with a
JSON error and acknowledges nothing. The pool drops broken connections and reconnects by itself.
The connection string is never logged (it may carry a password).
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from service import metrics
from service.storage.base import StorageUnavailable

__all__ = ["PostgresDatabase"]

_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
_MIGRATION_LOCK_KEY = 0x6D796F73  # "myos": any fixed number, the same in every instance


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class _Tx:
    """One transaction's statements. Those whose answer nobody reads (``queue``) wait on the client and go with
    the next statement that needs one, or with COMMIT: several statements in one query string, one round trip.

    Such a string cannot carry server-side parameters, so this cursor binds them on the client
    (``ClientCursor.mogrify``: psycopg's own quoting of each value as a literal, never string formatting).
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._cur = psycopg.ClientCursor(conn)
        self._queued: list[str] = []

    def _execute(self, sql: str, params: Sequence[Any]) -> psycopg.ClientCursor[Any]:
        statements = [*self._queued, self._statement(sql, params)]
        self._queued.clear()
        self._cur.execute("; ".join(statements))  # no parameters: one simple query, every statement in it
        while self._cur.nextset():  # to the last statement's result
            pass
        return self._cur

    def _statement(self, sql: str, params: Sequence[Any]) -> str:
        return self._cur.mogrify(_pg(sql), tuple(params)) if params else sql

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._execute(sql, params).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._execute(sql, params).fetchall())

    def queue(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._queued.append(self._statement(sql, params))

    def finish(self, last: str) -> None:
        self._execute(last, ())


class _ReadTx:
    """Reads outside a transaction: one statement each, parameters bound by the server (prepared when repeated)."""

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


class PostgresDatabase:
    backend: str = "postgresql"
    migration_lock: str | None = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"
    # Two 32-bit keys (namespace, key): a lock space apart from the migration lock's single 64-bit key.
    key_lock: str | None = "SELECT pg_advisory_xact_lock(?::integer, ?::integer)"

    def __init__(self, url: str, *, pool_size: int = 8, timeout_s: float = 5.0) -> None:
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,  # longest wait for a connection from the pool
            # autocommit: every transaction is an explicit BEGIN ... COMMIT (``transaction()``), nothing left open.
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout_s))},
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
    def transaction(self, store: str, *, durable: bool = True) -> Iterator[_Tx]:
        # BEGIN and COMMIT are statements like the others (see ``_Tx``): BEGIN (and SET LOCAL) travel with the
        # first statement that needs an answer, COMMIT with the writes queued after it. A transaction that only
        # writes is one round trip; ``conn.transaction()`` would wait for BEGIN on its own, and each write.
        try:
            with self._pool.connection() as conn:
                tx = _Tx(conn)
                tx.queue("BEGIN")
                if not durable:
                    # Like SQLite's synchronous=NORMAL: a crash of the database server may lose the last
                    # fraction of a second of these commits; a crash of ours loses nothing committed.
                    tx.queue("SET LOCAL synchronous_commit TO OFF")
                try:
                    yield tx
                    tx.finish("COMMIT")  # committed (or raised) before the caller goes on
                except BaseException:
                    with suppress(psycopg.Error):
                        conn.rollback()  # nothing if no transaction is open; a broken connection is dropped by the pool
                    raise
        except _UNAVAILABLE as exc:
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

    def close(self) -> None:
        self._pool.close()
