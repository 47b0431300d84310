"""The embedded back-end: one SQLite file in WAL mode, shared by every worker process on one host.

One connection per thread (sqlite3 connections must not cross threads). Writes take the file's
write lock up front (``BEGIN IMMEDIATE``) so two processes never deadlock upgrading a read lock;
a busy file waits up to 30 s before the call fails as :class:`StorageUnavailable`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from service import metrics
from service.storage.base import StorageUnavailable

__all__ = ["SqliteDatabase"]


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql, tuple(params)).fetchall())

    def queue(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._conn.execute(sql, tuple(params))  # in-process: nothing to save by waiting

    def last_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.rows(sql, params)  # COMMIT follows at the end of the block, as always


class SqliteDatabase:
    backend: str = "sqlite"
    migration_lock: str | None = None  # BEGIN IMMEDIATE already holds the file's only write lock
    locks_keys: bool = False  # one host: the hook reads its states outside the write transaction, as it always has

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, store: str, *, durable: bool = True, lock: tuple[int, int] | None = None) -> Iterator[_Tx]:
        # ``lock`` needs nothing more here: BEGIN IMMEDIATE holds the file's only write lock.
        try:
            conn = self._conn()
            # FULL fsyncs every commit (feedback: survives a power cut). NORMAL in WAL mode still survives
            # a killed process, and spares the hook's hot path an fsync per call.
            conn.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(conn)
            except BaseException:
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    @contextmanager
    def read(self, store: str) -> Iterator[_Tx]:
        try:
            yield _Tx(self._conn())
        except sqlite3.Error as exc:
            metrics.store_error(store, self.backend)
            raise StorageUnavailable(store, self.backend, type(exc).__name__) from None

    def statement(self, store: str, sql: str, params: Sequence[Any] = ()) -> int:
        with self.transaction(store) as tx:
            return tx.run(sql, params)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
