"""The jti replay store: each (issuer, jti) is accepted once until the token expires.

The SQL stays here for now; the storage issue moves it next to the other tables.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from typing import Any

__all__ = ["ReplayStore"]


class ReplayStore:
    """Remembers each (issuer, jti) until the token expires.

    SQLite in WAL mode so every gunicorn worker process sees the same set: a
    token replayed to another worker is still caught. The insert is a single
    atomic upsert, so two workers racing on the same jti cannot both win.
    The stored key is a SHA-256 of issuer and jti — fixed size, and jti is
    scoped per issuer as RFC 7519 §4.1.7 intends.
    """

    _PRUNE_EVERY_S = 60.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS jwt_jti (jti TEXT PRIMARY KEY, expires_at INTEGER)")
            conn.execute("CREATE INDEX IF NOT EXISTS jwt_jti_expires_at ON jwt_jti (expires_at)")

    def _connect(self) -> _ClosingConnection:
        # A connection per call: sqlite3 connections must not cross threads,
        # and a fresh connection is cheap next to a signature check.
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        return _ClosingConnection(conn)

    def claim(self, issuer: str, jti: str, expires_at: int) -> bool:
        """Record the jti; True if it was new (or its earlier use has expired), False on replay."""
        key = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        now = int(time.time())
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO jwt_jti (jti, expires_at) VALUES (?, ?) "
                "ON CONFLICT(jti) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE jwt_jti.expires_at < ?",
                (key, expires_at, now),
            )
            fresh = cur.rowcount == 1
        self._maybe_prune(now)
        return fresh

    def _maybe_prune(self, now: int) -> None:
        if not self._prune_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._last_prune < self._PRUNE_EVERY_S:
                return
            self._last_prune = time.monotonic()
            with self._connect() as conn:
                conn.execute("DELETE FROM jwt_jti WHERE expires_at < ?", (now,))
        finally:
            self._prune_lock.release()


class _ClosingConnection:
    """``with`` closes the connection (sqlite3's own context manager only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def __enter__(self) -> _ClosingConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()
