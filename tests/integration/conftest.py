"""Fixtures for the end-to-end tests: a real FHIR server and the service on real ports.

The embedded sekmet-fhir server is installed on first use (its own virtualenv,
pinned constraints). Where that is impossible (no access to PyPI), the tests
FAIL under CI (env CI set) so a broken set-up cannot pass silently, and are
skipped with the reason on a developer's machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.fhir_server import FhirServerError, FhirServerHandle, embedded_fhir_server, ensure_installed
from sandbox.loader import load_bundles
from sandbox.patients import list_patients

# The FHIR server accepts only this token: a service that did not pass
# fhirAuthorization.access_token on its own reads would get 401s.
TOKEN = "integration-test-token"


def _unavailable(message: str) -> None:
    text = f"the embedded FHIR server is unavailable: {message}"
    if os.environ.get("CI"):
        pytest.fail(text, pytrace=False)
    pytest.skip(text + " (set CI=1 to make this a failure)")


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServerHandle]:
    try:
        ensure_installed()
    except FhirServerError as exc:
        _unavailable(str(exc))
    log_copy = tmp_path_factory.mktemp("fhir") / "sekmet.log"
    try:
        with embedded_fhir_server(bearer_token=TOKEN, keep_log=log_copy) as handle:
            load_bundles(handle.base_url, [p.path for p in list_patients()], access_token=TOKEN)
            yield handle
    except FhirServerError as exc:
        _unavailable(str(exc))


@dataclass(frozen=True)
class Service:
    base_url: str


@pytest.fixture(scope="session")
def cds_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The Flask app on a free loopback port (werkzeug in a thread): real HTTP both ways."""
    from sandbox.appserver import sandbox_config, serve_in_thread
    from service import create_app

    db = Path(tmp_path_factory.mktemp("cds")) / "cds.sqlite3"
    app = create_app(sandbox_config(str(db), LOG_LEVEL="WARNING"))
    with serve_in_thread(app) as served:
        yield Service(served.base_url)
