"""Fixtures for the reliability suite: one app per module, and no traffic off loopback.

Fuzzed requests carry random ``fhirServer`` URLs; the service would try to
read from them. Two guards make sure nothing leaves the machine: every
``requests`` call goes through a ``responses`` mock (unregistered URLs fail
as "connection refused"), and a socket guard refuses any ``connect`` to a
non-loopback address from this process.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask

from service import create_app
from tests.conftest import TODAY

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX and friends: local by construction
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name: connect() is never given one unresolved, refuse to be safe


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"reliability tests: refused to connect off loopback to {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"reliability tests: refused to connect off loopback to {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket this process opens may only reach 127.0.0.0/8 or ::1."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)


def app_config(database: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "TESTING": True,
        "AUTH_ENABLED": False,
        "FEEDBACK_ITEMS_PER_MINUTE": 10_000_000,  # the budget has its own tests (tests/service/test_feedback_budget.py)
        "DATABASE": str(database),
        "TODAY": TODAY,
        # Generous: a loaded CI machine must never time out a healthy server (see tests/conftest.py).
        "FHIR_CONNECT_TIMEOUT_S": 5.0,
        "FHIR_READ_TIMEOUT_S": 10.0,
        "FHIR_DEADLINE_S": 20.0,
        "LOG_LEVEL": "WARNING",
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory for fuzzed apps' SQLite files: in RAM when /dev/shm exists.

    The store fsyncs every write (synchronous=FULL); thousands of fuzz cases
    on a disk would spend most of their time waiting for it.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(prefix="myositis-fuzz-", dir=shm) as tmp:
            yield Path(tmp)
    else:
        yield tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def module_app(scratch_dir: Path) -> Flask:
    """One app for a whole fuzz module (hypothesis re-runs the test body, not fixtures)."""
    return create_app(app_config(scratch_dir / "cds.sqlite3"))


@pytest.fixture(scope="module")
def offline() -> Iterator[responses.RequestsMock]:
    """Every outgoing ``requests`` call is answered by this mock: unregistered URLs raise ConnectionError."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture(scope="module")
def make_module_app(scratch_dir: Path) -> Callable[..., Flask]:
    def build(**overrides: Any) -> Flask:
        return create_app(app_config(Path(tempfile.mkdtemp(dir=scratch_dir)) / "cds.sqlite3", **overrides))

    return build
