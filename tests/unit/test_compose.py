"""docker-compose.yml and Dockerfile: structure checks (no Docker engine here to run them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"cds", "cds2", "db", "hapi", "loader", "nginx"} == set(services)
    assert services["cds2"]["image"] == services["cds"]["image"]  # two instances of one service
    assert services["db"]["image"].split(":")[1] == "15"
    assert services["cds"]["build"] == "."
    image, _, tag = services["hapi"]["image"].partition(":")
    assert image == "hapiproject/hapi"
    assert tag.startswith("v") and tag != "latest", "pin the HAPI FHIR version: a moving tag changes the server"
    # The loader is the service's image plus the sandbox package: it runs `myositis-cds load`.
    assert services["loader"]["build"] == {"context": ".", "target": "sandbox"}
    assert services["loader"]["image"] != services["cds"]["image"]


def test_ports(compose: dict[str, Any]) -> None:
    """Issue 19, findings 2 and 8: published on loopback unless told otherwise; gunicorn never published."""
    services = compose["services"]
    assert services["nginx"]["ports"] == ["${CDS_PUBLISH_ADDR:-127.0.0.1}:8080:8080"]
    assert services["hapi"]["ports"] == ["${CDS_PUBLISH_ADDR:-127.0.0.1}:8090:8080"]
    for name in ("cds", "cds2"):  # gunicorn is reached through nginx only
        assert "ports" not in services[name] and services[name]["expose"] == ["8080"]
    assert "ports" not in services["db"]  # the database is reached on the compose network only
    assert "ports" not in services["loader"]


def test_nginx_fronts_the_service(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    image, _, tag = nginx["image"].partition(":")
    assert image == "nginx" and tag[:1].isdigit(), "pin nginx"
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert nginx["depends_on"]["cds"]["condition"] == nginx["depends_on"]["cds2"]["condition"] == "service_healthy"
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    lines = [line.split("#", 1)[0].strip() for line in conf.splitlines()]
    settings = dict(
        line.rstrip(";").split(None, 1)
        for line in lines
        if line.endswith(";") and " " in line and not line.startswith(("location", "error_page"))
    )
    assert settings["client_header_timeout"] == "5s" and settings["client_body_timeout"] == "10s"
    assert settings["client_max_body_size"] == "8m"  # MAX_CONTENT_LENGTH
    assert settings["proxy_request_buffering"].startswith("on") and settings["proxy_buffering"].startswith("on")
    assert "server cds:8080;" in conf and "server cds2:8080;" in conf
    for status in ("413", "431", "429", "502"):
        assert f'return {status} \'{{"error":' in conf, f"nginx's own {status} must be JSON"


def test_environment(compose: dict[str, Any]) -> None:
    cds_env = compose["services"]["cds"]["environment"]
    # Issue 19, finding 8: authentication on unless told otherwise; the issuer file is the HL7 sandbox's.
    assert cds_env["MYOSITIS_CDS_AUTH_ENABLED"] == "${CDS_AUTH_ENABLED:-true}"
    issuers = cds_env["MYOSITIS_CDS_TRUSTED_ISSUERS"]
    assert issuers == "${CDS_TRUSTED_ISSUERS:-/etc/myositis-cds/trusted-issuers.json}"
    assert (
        "./deploy/trusted-issuers.sandbox.json:/etc/myositis-cds/trusted-issuers.json:ro"
        in compose["services"]["cds"]["volumes"]
    )
    from service.auth import load_trusted_issuers

    assert list(load_trusted_issuers(str(ROOT / "deploy" / "trusted-issuers.sandbox.json"))) == [
        "https://sandbox.cds-hooks.org"
    ]
    assert cds_env["MYOSITIS_CDS_BIND_HOST"] == "0.0.0.0"  # inside the compose network, for nginx
    # Issue 17: both instances on one PostgreSQL with one patient-key secret.
    assert (
        cds_env["MYOSITIS_CDS_DATABASE_URL"].startswith("postgresql://")
        and "@db:" in cds_env["MYOSITIS_CDS_DATABASE_URL"]
    )
    assert compose["services"]["cds2"]["environment"] == cds_env
    assert compose["services"]["cds"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert compose["services"]["hapi"]["environment"]["hapi.fhir.fhir_version"] == "R4"
    for value in cds_env.values():
        assert isinstance(value, str), "compose environment values must be strings"


def test_loader_runs_once_after_hapi(compose: dict[str, Any]) -> None:
    loader = compose["services"]["loader"]
    command = loader["command"]
    assert command[:2] == ["myositis-cds", "load"]
    assert command[command.index("--fhir") + 1] == "http://hapi:8080/fhir"
    # HAPI's image has no shell or curl to health-check with: the loader waits for /metadata itself.
    assert float(command[command.index("--wait") + 1]) >= 120
    assert loader["restart"] == "no"
    assert loader["depends_on"]["hapi"]["condition"] == "service_started"
    assert loader["depends_on"]["cds"]["condition"] == "service_healthy"


def test_healthchecks(compose: dict[str, Any]) -> None:
    check = compose["services"]["cds"]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert "http://127.0.0.1:8080/readyz" in " ".join(check["test"])
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check


def test_volumes_declared(compose: dict[str, Any]) -> None:
    used = {
        v.split(":")[0]
        for svc in compose["services"].values()
        for v in svc.get("volumes", [])
        if not v.startswith((".", "/"))
    }
    assert used == {"cds-db"}  # the instances keep nothing on disk: their state is in PostgreSQL
    assert used <= set(compose["volumes"])


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    first_from = next(ln for ln in text.splitlines() if ln.startswith("FROM"))
    assert first_from.split()[1] == "python:3.11-slim"
    assert "pip install ." in text
    # gunicorn's settings live in service/gunicorn_app.py only: the image serves through the CLI.
    assert '"myositis-cds", "serve", "--port", "8080"' in text
    code = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert "ENV MYOSITIS_CDS_BIND_HOST=127.0.0.1" in code and "0.0.0.0" not in code  # loopback unless told
    assert "gunicorn" not in "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert "EXPOSE 8080" in text and "HEALTHCHECK" in text and "USER cds" in text
    for path in ("pyproject.toml", "service", "mappings", "cards"):
        assert f"COPY {path}" in text


def _stages(text: str) -> dict[str, list[str]]:
    """Dockerfile lines by build stage name (``FROM image AS name``)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_production_image_carries_no_sandbox() -> None:
    """The default (last) stage builds from the runtime packages only; the sandbox is COPYed in its own stage."""
    stages = _stages((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    names = list(stages)
    assert names[-1] == "runtime", "the last stage is what `docker build .` produces"
    chain, seen = ["runtime"], set()
    while chain[-1] in stages and chain[-1] not in seen:  # runtime and the stages it builds FROM
        seen.add(chain[-1])
        chain.append(stages[chain[-1]][0].split()[1])
    for stage in seen:
        assert not any(ln.startswith("COPY sandbox") or ln.startswith("COPY . ") for ln in stages[stage]), stage
    assert any(ln.startswith("COPY sandbox") for ln in stages["sandbox"])


def test_dockerignore_keeps_secrets_and_venvs_out() -> None:
    lines = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".venv-fhir", "tests"} <= lines


def test_gunicorn_settings_bound_slow_and_large_requests() -> None:
    from service.gunicorn_app import gunicorn_options

    options = gunicorn_options(host="127.0.0.1", port=8080, workers=2)
    assert options["worker_class"] == "gthread" and options["threads"] == 4
    assert options["timeout"] == 30 and options["graceful_timeout"] == 10 and options["keepalive"] <= 5
    assert options["limit_request_line"] <= 8190 and options["limit_request_fields"] <= 100
    assert 16 * 1024 < options["limit_request_field_size"] <= 32 * 1024  # the app's own 431 limit is 16 KiB
