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
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from service import metrics
from service.storage.base import StorageUnavailable

__all__ = ["PostgresDatabase"]

_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
_MIGRATION_LOCK_KEY = 0x6D796F73  # "myos": any fixed number, the same in every instance


class _Tx:
    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return self._cur.rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql.replace("?", "%s"), tuple(params))
        return list(self._cur.fetchall())


class PostgresDatabase:
    backend: str = "postgresql"
    migration_lock: str | None = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"

    def __init__(self, url: str, *, pool_size: int = 8, timeout_s: float = 5.0) -> None:
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            timeout=timeout_s,  # longest wait for a connection from the pool
            # autocommit: every transaction is an explicit ``conn.transaction()`` block, nothing left open.
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
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                if not durable:
                    # Like SQLite's synchronous=NORMAL: a crash of the database server may lose the last
                    # fraction of a second of these commits; a crash of ours loses nothing committed.
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
                yield _Tx(cur)
        except _UNAVAILABLE as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    @contextmanager
    def read(self, store: str) -> Iterator[_Tx]:
        try:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield _Tx(cur)
        except _UNAVAILABLE as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    def close(self) -> None:
        self._pool.close()
