"""``myositis-cds sandbox`` as a locally served HL7 CDS Hooks Sandbox (an open launch) meets it.

The requests below are the ones the HL7 sandbox's browser code makes (github.com/cds-hooks/sandbox):
src/retrieve-data-helpers/fhir-metadata-retrieval.js reads ``/metadata`` and then ``/Patient`` with no
token and refuses a server that answers 401 ("Cannot configure secured FHIR endpoints");
discovery-services-retrieval.js GETs the discovery endpoint with a JWT; service-exchange.js POSTs the
hook with no ``fhirAuthorization`` (no access token on an open launch). All of them cross origins, so
each answer must carry ``Access-Control-Allow-Origin`` for the page's origin.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from sandbox.fhir_server import FhirServerHandle
from service.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAGE = "http://localhost:8000"  # where the HL7 sandbox's build/ is served
JWT = "eyJhbGciOiJFUzM4NCJ9.e30.c2ln"  # the HL7 sandbox always sends one; the sandbox's service ignores it


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if k != "MYOSITIS_CDS_CORS_ORIGINS"}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "sandbox", "--port", "0", "--service-port", "0", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    return proc, "".join(lines)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def open_sandbox(fhir_server: FhirServerHandle) -> Iterator[tuple[str, str, str]]:
    # fhir_server: only so that an unavailable FHIR server skips/fails with the fixture's message
    proc, output = _start("--no-require-token", "--cors-origin", PAGE)
    try:
        assert "Press Ctrl-C" in output, output
        fhir = re.search(r"FHIR server \(sekmet-fhir, in memory\): (\S+)", output)
        service = re.search(r"CDS service \(.*\): (\S+)/cds-services", output)
        assert fhir and service, output
        yield fhir.group(1), service.group(1), output
    finally:
        _stop(proc)


def test_the_default_sandbox_is_a_secured_fhir_endpoint_the_hl7_sandbox_refuses(fhir_server: FhirServerHandle) -> None:
    proc, output = _start()
    try:
        fhir = re.search(r"FHIR server \(sekmet-fhir, in memory\): (\S+)", output)
        assert fhir, output
        assert "restart with --no-require-token" in output
        answer = requests.get(f"{fhir.group(1)}/Patient", headers={"Accept": "application/json"}, timeout=10)
        assert answer.status_code == 401  # what makes the HL7 sandbox say "Cannot configure secured FHIR endpoints"
    finally:
        _stop(proc)


def test_an_open_launch_of_the_hl7_sandbox_gets_cards(open_sandbox: tuple[str, str, str]) -> None:
    fhir, service, output = open_sandbox
    assert f"browser origins allowed (CORS): {PAGE}" in output
    browser = {"Origin": PAGE, "Accept": "application/json"}

    for path in ("metadata", "Patient", "Patient/example-dm-001"):
        answer = requests.get(f"{fhir}/{path}", headers=browser, timeout=30)
        assert answer.status_code == 200, (path, answer.status_code)
        assert answer.headers.get("Access-Control-Allow-Origin") in (PAGE, "*"), path

    found = requests.get(f"{service}/cds-services", headers={**browser, "Authorization": f"Bearer {JWT}"}, timeout=10)
    assert found.status_code == 200 and found.headers.get("Access-Control-Allow-Origin") == PAGE
    assert "myositis-next-line" in {s["id"] for s in found.json()["services"]}

    hook = {
        "hookInstance": str(uuid.uuid4()),
        "hook": "patient-view",
        "fhirServer": fhir,
        "context": {"patientId": "example-dm-001", "userId": "Practitioner/COREPRACTITIONER1"},
    }
    answer = requests.post(
        f"{service}/cds-services/myositis-next-line",
        json=hook,
        headers={**browser, "Authorization": f"Bearer {JWT}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers.get("Access-Control-Allow-Origin") == PAGE
    assert any("Active DM despite" in card["summary"] for card in answer.json()["cards"])


def test_the_printed_fire_command_works_without_a_token(open_sandbox: tuple[str, str, str]) -> None:
    _, _, output = open_sandbox
    line = next(ln for ln in output.splitlines() if ln.strip().startswith("myositis-cds fire --patient example-dm-001"))
    args = [a.strip("'") for a in line.split()[1:]]  # the shell would drop the quotes of --token ''
    assert args[args.index("--token") + 1] == ""
    fired = CliRunner().invoke(main, args)
    assert fired.exit_code == 0, fired.output
    assert "Active DM despite" in fired.output
