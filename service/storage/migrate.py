"""Schema versions: numbered SQL files in ``migrations/``, applied once each, at start-up, in order.

Why a small runner and not Alembic or yoyo: the schema is a handful of tables written in SQL that
both back-ends run, the service uses no ORM (Alembic's home ground is SQLAlchemy models), and the
runner has to do only three things: serialise concurrent start-ups (PostgreSQL advisory lock;
SQLite's ``BEGIN IMMEDIATE``), apply what is missing in one transaction (DDL is transactional in
both), and record it in ``schema_migrations``. That is some forty lines we can read in one sitting.

``NNNN_name.sql`` is shared; ``NNNN_name.<backend>.sql`` (``sqlite``/``postgresql``) replaces it for
that back-end only, where the SQL cannot be shared. Never edit an applied file: add the next one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from service.storage.sql import Database

__all__ = ["Migration", "migrations", "migrate"]

_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)(?:\.(sqlite|postgresql))?\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> Iterator[str]:
        """``--`` comment lines dropped, split at ``;`` outside dollar-quoted bodies (``$$ ... $$``, a function's:
        its own ``;`` do not end the statement). Our migration files put no ``;`` or ``$$`` inside strings."""
        text = "\n".join(line for line in self.sql.splitlines() if not line.lstrip().startswith("--"))
        pieces = text.split("$$")
        if len(pieces) % 2 == 0:
            raise RuntimeError(f"migration {self.version}: a $$ body is not closed")
        current = ""
        for index, piece in enumerate(pieces):
            if index % 2:  # inside $$ ... $$: kept whole
                current += f"$${piece}$$"
                continue
            *ended, current_tail = piece.split(";")
            for part in ended:
                if (current + part).strip():
                    yield (current + part).strip()
                current = ""
            current += current_tail
        if current.strip():
            yield current.strip()


def migrations(backend: str) -> list[Migration]:
    """The migration files for ``backend``, in version order."""
    chosen: dict[int, tuple[bool, Migration]] = {}
    for entry in resources.files("service.storage").joinpath("migrations").iterdir():
        match = _NAME.fullmatch(entry.name)
        if match is None or match.group(3) not in (None, backend):
            continue
        version, specific = int(match.group(1)), match.group(3) is not None
        if version in chosen and chosen[version][0] and not specific:
            continue  # the back-end's own file wins over the shared one
        chosen[version] = (specific, Migration(version, match.group(2), entry.read_text(encoding="utf-8")))
    versions = sorted(chosen)
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must run 1..n without gaps: {versions}")
    return [chosen[v][1] for v in versions]


def migrate(db: Database) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied now."""
    applied: list[int] = []
    with db.transaction("migrations") as tx:
        if db.migration_lock:
            tx.run(db.migration_lock)  # before anything else: two instances starting at once wait here
        tx.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        done = {int(row[0]) for row in tx.rows("SELECT version FROM schema_migrations")}
        for migration in migrations(db.backend):
            if migration.version in done:
                continue
            for statement in migration.statements():
                tx.run(statement)
            tx.run(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
            applied.append(migration.version)
    return applied
