"""The click commands with the network mocked, and the offline demo (no FHIR server)."""

from __future__ import annotations

import json

import click
import responses
from click.testing import CliRunner

from sandbox import commands
from sandbox.patients import list_patients

FHIR = "http://127.0.0.1:9998/fhir"
SERVICE = "http://127.0.0.1:9999"


def test_register_adds_the_sandbox_commands() -> None:
    group = click.Group("g")
    commands.register(group)
    assert set(group.commands) == {"load", "fire", "sandbox", "demo", "review"}


@responses.activate
def test_load_defaults_to_every_example_patient() -> None:
    responses.post(
        FHIR,
        json={
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created"}}],
        },
    )
    result = CliRunner().invoke(commands.load_command, ["--fhir", FHIR])
    assert result.exit_code == 0, result.output
    assert len(responses.calls) == len(list_patients())
    assert f"{len(list_patients())} bundle(s) loaded into {FHIR}" in result.output


@responses.activate
def test_load_error_exits_nonzero_with_the_reason() -> None:
    responses.post(
        FHIR,
        status=401,
        json={
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "login", "diagnostics": "Authentication required"}],
        },
    )
    result = CliRunner().invoke(commands.load_command, ["--fhir", FHIR, "--token", ""])
    assert result.exit_code == 1
    assert "HTTP 401: error login: Authentication required" in result.output
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_fire_prints_cards_or_json() -> None:
    responses.get(f"{SERVICE}/cds-services", json={"services": [{"id": "myositis-next-line", "hook": "patient-view"}]})
    responses.post(
        f"{SERVICE}/cds-services/myositis-next-line",
        json={"cards": [{"summary": "S", "indicator": "info", "source": {"label": "L"}}]},
    )
    args = ["--patient", "p1", "--fhir", FHIR, "--service", SERVICE]
    text = CliRunner().invoke(commands.fire_command, args)
    assert text.exit_code == 0 and "[1/1] i INFO: S" in text.output
    raw = CliRunner().invoke(commands.fire_command, [*args, "--json"])
    assert json.loads(raw.output)["cards"][0]["summary"] == "S"
    sent = json.loads(responses.calls[1].request.body)
    assert sent["context"]["patientId"] == "p1" and sent["fhirAuthorization"]["access_token"] == commands.SANDBOX_TOKEN


@responses.activate
def test_fire_reports_service_errors() -> None:
    responses.get(f"{SERVICE}/cds-services", json={"services": [{"id": "myositis-next-line", "hook": "patient-view"}]})
    responses.post(
        f"{SERVICE}/cds-services/myositis-next-line",
        status=412,
        json={"error": "patient-not-found", "message": "The patient was not found on the FHIR server."},
    )
    result = CliRunner().invoke(commands.fire_command, ["--patient", "nobody", "--service", SERVICE, "--no-prefetch"])
    assert result.exit_code == 1
    assert "HTTP 412" in result.output and "patient-not-found" in result.output


def test_fire_when_the_service_is_down() -> None:
    result = CliRunner().invoke(commands.fire_command, ["--patient", "p1", "--service", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach the CDS service" in result.output


def test_demo_offline_needs_no_fhir_server() -> None:
    result = CliRunner().invoke(commands.demo_command, ["--offline"])
    assert result.exit_code == 0, result.output
    assert "prefetch is built from the packaged Bundle" in result.output
    assert "Active DM despite" in result.output


def test_demo_falls_back_when_the_fhir_server_cannot_start(monkeypatch) -> None:
    from sandbox import fhir_server

    def broken(*args: object, **kwargs: object) -> None:
        raise fhir_server.FhirServerError("could not install sekmet-fhir==0.1.1 (needs access to PyPI)")

    monkeypatch.setattr(fhir_server, "embedded_fhir_server", broken)
    result = CliRunner().invoke(commands.demo_command, [])
    assert result.exit_code == 0, result.output
    assert "not available: could not install sekmet-fhir" in result.output
    assert "Falling back" in result.output and "Active DM despite" in result.output


def test_demo_unknown_patient() -> None:
    result = CliRunner().invoke(commands.demo_command, ["--patient", "nobody", "--offline"])
    assert result.exit_code == 1 and "no example patient 'nobody'" in result.output


def test_the_sandbox_takes_cors_origins_from_the_environment(monkeypatch) -> None:
    from sandbox.appserver import sandbox_config

    assert sandbox_config("x.sqlite3")["CORS_ORIGINS"] == ["https://sandbox.cds-hooks.org"]
    monkeypatch.setenv("MYOSITIS_CDS_CORS_ORIGINS", "http://localhost:8081, https://sandbox.cds-hooks.org")
    assert sandbox_config("x.sqlite3")["CORS_ORIGINS"] == ["http://localhost:8081", "https://sandbox.cds-hooks.org"]
