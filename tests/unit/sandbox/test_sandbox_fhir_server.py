"""Embedded FHIR server control, without starting it (the integration tests do that)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import fhir_server
from sandbox.fhir_server import CONSTRAINTS_FILE, FhirServerError


def test_constraints_pin_everything() -> None:
    lines = [ln.strip() for ln in CONSTRAINTS_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert "sekmet-fhir==0.1.1" in lines
    assert all("==" in ln for ln in lines), "every dependency of the FHIR server is pinned"


def test_venv_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(fhir_server.FHIR_VENV_ENV, str(tmp_path / "v"))
    assert fhir_server.default_venv_path() == tmp_path / "v"
    monkeypatch.delenv(fhir_server.FHIR_VENV_ENV)
    assert fhir_server.default_venv_path().name in (".venv-fhir", "venv-fhir")


def test_is_installed_needs_the_marker(tmp_path: Path) -> None:
    assert not fhir_server.is_installed(tmp_path)
    sekmet = tmp_path / "bin" / "sekmet"
    sekmet.parent.mkdir()
    sekmet.write_text("")
    assert not fhir_server.is_installed(tmp_path)  # no marker: an interrupted or older install
    (tmp_path / ".myositis-cds-constraints.sha256").write_text(fhir_server._constraints_digest())
    assert fhir_server.is_installed(tmp_path)
    assert fhir_server.ensure_installed(tmp_path) == sekmet  # idempotent: nothing to do


def test_install_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(cmd: list[str], what: str) -> None:
        raise FhirServerError(f"could not {what} (exit 1):\n  ERROR: No matching distribution")

    monkeypatch.setattr(fhir_server, "_run", fail)
    with pytest.raises(FhirServerError, match="could not create a virtualenv"):
        fhir_server.ensure_installed(tmp_path / "venv")


def test_settings_match_the_port(tmp_path: Path) -> None:
    settings = fhir_server._settings(12345, tmp_path, None)
    assert settings["base_url"] == "http://127.0.0.1:12345/fhir"
    assert settings["port"] == 12345 and settings["host"] == "127.0.0.1"
    assert settings["db_path"] == ":memory:"
    assert settings["simulator"] == {"enabled": False}
    assert "server_auth" not in settings
    secured = fhir_server._settings(1, tmp_path, "tok")
    assert secured["server_auth"] == {"types": ["bearer"], "tokens": ["tok"]}


def test_free_port() -> None:
    assert 0 < fhir_server.free_port() < 65536
