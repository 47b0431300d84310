"""Storage for one host or many: feedback, issued cards, the JWT replay store, suppression state, RxNav cache.

One ``Protocol`` per store (``base.py``), written once in SQL both back-ends run (``sql.py``):

* SQLite (``sqlite.py``), the embedded default: ``MYOSITIS_CDS_DATABASE`` (a file in the instance
  folder unless set). ``make demo`` and a single host need nothing else.
* PostgreSQL (``postgres.py``; psycopg 3 + psycopg_pool) when ``MYOSITIS_CDS_DATABASE_URL`` is
  ``postgresql://...``: every instance behind a load balancer shares replay protection, feedback
  and suppression.

The schema is applied at start-up by ``migrate.py`` from ``migrations/*.sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app

from service.storage.base import (
    FeedbackItem,
    FeedbackStore,
    IssuedCard,
    IssuedCardStore,
    KindReport,
    ReplayStore,
    RxNavCache,
    Show,
    StorageUnavailable,
    SuppressionState,
    SuppressionStore,
)
from service.storage.migrate import migrate
from service.storage.sql import (
    Database,
    SqlFeedbackStore,
    SqlIssuedCardStore,
    SqlReplayStore,
    SqlRxNavCache,
)
from service.storage.sql_report import NO_REASON, kind_report
from service.storage.sql_suppression import SqlSuppressionStore

__all__ = [
    "NO_REASON",
    "FeedbackItem",
    "FeedbackStore",
    "IssuedCard",
    "IssuedCardStore",
    "KindReport",
    "ReplayStore",
    "RxNavCache",
    "Show",
    "Storage",
    "StorageUnavailable",
    "SuppressionState",
    "SuppressionStore",
    "get_storage",
    "init_app",
    "open_storage",
]

_EXT = "myositis_storage"


@dataclass(frozen=True, slots=True)
class Storage:
    """Every store of one database."""

    backend: str
    feedback: FeedbackStore
    issued: IssuedCardStore
    replay: ReplayStore
    suppression: SuppressionStore
    rxnav: RxNavCache
    database: Database

    def report(self) -> list[KindReport]:
        return kind_report(self.database)

    def ping(self) -> None:
        """Raises :class:`StorageUnavailable` unless the database answers a query."""
        with self.database.read("ping") as tx:
            tx.rows("SELECT 1")

    def close(self) -> None:
        self.database.close()


def open_storage(
    *, database: str | Path | None = None, url: str | None = None, pool_size: int = 8, timeout_s: float = 5.0
) -> Storage:
    """PostgreSQL when ``url`` is given, else the SQLite file ``database``; the schema is brought up to date."""
    db: Database
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            # Only the scheme is quoted: the rest may hold a password.
            raise ValueError(f"DATABASE_URL must start with postgresql:// (got {url.split(':', 1)[0]}:...)")
        from service.storage.postgres import PostgresDatabase  # psycopg is loaded only when configured

        db = PostgresDatabase(url, pool_size=pool_size, timeout_s=timeout_s)
    else:
        if database is None:
            raise ValueError("either a SQLite file or a DATABASE_URL is needed")
        from service.storage.sqlite import SqliteDatabase

        db = SqliteDatabase(database)
    migrate(db)
    return Storage(
        db.backend,
        SqlFeedbackStore(db),
        SqlIssuedCardStore(db),
        SqlReplayStore(db),
        SqlSuppressionStore(db),
        SqlRxNavCache(db),
        db,
    )


def init_app(app: Flask) -> None:
    """Open the configured storage once per process (after gunicorn's fork: ``preload_app`` is off)."""
    from service.config import DEFAULTS

    cfg = app.config
    path = cfg.get("DATABASE") or str(Path(app.instance_path) / "myositis-cds.sqlite3")
    cfg["DATABASE"] = path
    app.extensions[_EXT] = open_storage(
        database=path,
        url=cfg.get("DATABASE_URL"),
        pool_size=int(cfg.get("DATABASE_POOL_SIZE", DEFAULTS["DATABASE_POOL_SIZE"])),
        timeout_s=float(cfg.get("DATABASE_TIMEOUT_S", DEFAULTS["DATABASE_TIMEOUT_S"])),
    )


def get_storage(app: Flask | None = None) -> Storage:
    storage: Storage = (app or current_app).extensions[_EXT]
    return storage
