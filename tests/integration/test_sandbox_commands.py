"""The click commands, end to end: demo (one shot) and sandbox (long-running, stopped by Ctrl-C)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandbox.fhir_server import FhirServerHandle
from service.cli import main

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_prints_the_reference_patients_cards(fhir_server: FhirServerHandle) -> None:
    # fhir_server: only so that an unavailable FHIR server skips/fails with the fixture's message
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "firing patient-view for example-dm-001 with prefetch" in result.output
    assert re.search(r"\[1/\d+\] \S+ \w+: Active DM despite \d+ agents: refer to a myositis centre", result.output)
    assert "Falling back" not in result.output


def test_demo_json_for_a_patient_without_myositis(fhir_server: FhirServerHandle) -> None:
    result = CliRunner().invoke(main, ["demo", "--patient", "example-no-myositis", "--json"])
    assert result.exit_code == 0, result.output
    assert '"cards": []' in result.output


def test_sandbox_runs_until_ctrl_c(fhir_server: FhirServerHandle) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "sandbox", "--port", "0", "--service-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "Press Ctrl-C" in output, output
        fire_line = next(ln for ln in lines if ln.strip().startswith("myositis-cds fire --patient example-dm-001"))
        args = fire_line.split()[1:]  # ready to paste: reuse it verbatim
        fired = CliRunner().invoke(main, args)
        assert fired.exit_code == 0, fired.output
        assert "Active DM despite" in fired.output
        no_prefetch = CliRunner().invoke(main, [*args, "--no-prefetch"])
        assert no_prefetch.exit_code == 0 and "Active DM despite" in no_prefetch.output
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    assert code == 0
