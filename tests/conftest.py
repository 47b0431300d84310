from __future__ import annotations

import contextlib
import json as _json
import logging as _logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings

from service import create_app
from service.logs import JsonFormatter as _JsonFormatter

TODAY = "2026-11-23"

# CI: the same examples on every run (a failure there is a bug to fix, not bad luck) and no
# example database carried between runs. Locally hypothesis keeps exploring new examples.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("HYPOTHESIS_PROFILE") == "ci" or os.environ.get("CI"):
    settings.load_profile("ci")

# Loopback servers (sandbox FHIR, fault server, gunicorn) must never be reached through a proxy
# configured for the machine's outbound traffic.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name, ""), "127.0.0.1", "localhost"]))

# Patient keys (service/suppression.py) need a secret; without this every app built by a test would generate one
# into the repository's instance folder. Servers the tests start inherit it.
os.environ.setdefault("MYOSITIS_CDS_PATIENT_KEY_SECRET", "test-only-patient-key-secret-0123456789")


@pytest.fixture
def make_app(tmp_path) -> Callable[..., Flask]:
    """Build an app with test settings; keyword overrides win."""

    def build(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "AUTH_ENABLED": False,
            "FEEDBACK_ITEMS_PER_MINUTE": 10_000_000,  # the budget has its own tests (tests/service/test_feedback_budget.py)
            "DATABASE": str(tmp_path / "cds.sqlite3"),
            "TODAY": TODAY,
            # Generous: a loaded CI machine must never time out a healthy loopback server. Tests of
            # time-outs set tight values themselves, with faults that outlast them.
            "FHIR_CONNECT_TIMEOUT_S": 5.0,
            "FHIR_READ_TIMEOUT_S": 10.0,
            "FHIR_DEADLINE_S": 20.0,
        }
        config.update(overrides)
        return create_app(config)

    return build


@pytest.fixture
def app(make_app) -> Iterator[Flask]:
    yield make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- No PHI in the logs of the whole run ------------------------------------------------------
# Every record any test makes the service log is kept (formatted as the JSON handler writes it)
# and, when the run ends, scanned for the example patients' names, identifiers, ids and birth
# dates. tests/reliability/test_no_phi_in_logs.py probes the paths on purpose; this catches the
# paths nobody thought of.


_PLANTED = "myositis_cds.planted"  # the reliability suite's deliberate leak, proving its trap works


class _RunLog(_logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=_logging.DEBUG)
        self.setFormatter(_JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: _logging.LogRecord) -> None:
        if not record.name.startswith(_PLANTED):
            self.lines.append(self.format(record))


_RUN_LOG = _RunLog()


def _example_phi() -> set[str]:
    from sandbox.patients import list_patients

    found: set[str] = set()
    for patient in list_patients():
        for entry in patient.bundle()["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] != "Patient":
                continue
            found.add(resource["id"])
            found.update(v for v in [resource.get("birthDate")] if v)
            for name in resource.get("name", []):
                found.update(n for n in [name.get("family"), *name.get("given", [])] if n)
            for identifier in resource.get("identifier", []):
                found.update(v for v in [identifier.get("value")] if v)
    return found


def pytest_configure(config) -> None:
    logger = _logging.getLogger("myositis_cds")
    logger.addHandler(_RUN_LOG)


def pytest_sessionfinish(session, exitstatus) -> None:
    if not _RUN_LOG.lines:
        return
    phi = _example_phi()
    leaks = sorted({value for line in _RUN_LOG.lines for value in phi if value in line})
    if leaks:
        sample = next(line for line in _RUN_LOG.lines if any(v in line for v in leaks))
        print(f"\nPHI in the service's logs during this run: {_json.dumps(leaks)}\n  e.g. {sample[:300]}")
        session.exitstatus = 1


# --- PostgreSQL: one throw-away cluster per run, a fresh database per test ---------------------------
# Without PostgreSQL these tests skip locally and fail under CI (.ci/run installs it).


@pytest.fixture(scope="session")
def postgres_cluster():
    from bench.postgres import postgres_cluster as start
    from bench.postgres import unavailable_reason

    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL for the storage tests: {reason}")
        pytest.skip(reason)
    with start() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    return postgres_cluster.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_settings(request, tmp_path) -> dict[str, Any]:
    """App settings for one shared database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {"DATABASE": str(tmp_path / "shared.sqlite3")}
    return {"DATABASE_URL": request.getfixturevalue("postgres_url")}


@contextlib.contextmanager
def postgres_refusing(url: str) -> Iterator[None]:
    """The database at ``url`` drops its connections and refuses new ones until the block ends (a lost server)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")  # a generated test database name
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
