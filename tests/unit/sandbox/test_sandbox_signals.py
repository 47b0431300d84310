"""``myositis-cds sandbox`` as a real process: stopped by SIGINT / SIGTERM / SIGHUP at any point of its life, it
stops the FHIR child and removes its temp dirs; its service answers CORS for the origins it was given.

The FHIR server is ``fake_sekmet.py`` (a fake venv's ``sekmet``), so each test can hold the sandbox at the
step it means (waiting for the FHIR server, loading the patients, running) without PyPI or the real server.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sandbox import fhir_server

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals and /proc")

ROOT = Path(__file__).resolve().parents[3]
FAKE = Path(__file__).with_name("fake_sekmet.py")
START_S = 60.0  # generous: a loaded CI machine starting Python twice
LOCAL_SANDBOX = "http://localhost:8000"


@dataclass
class Sandbox:
    proc: subprocess.Popen[str]
    tmp: Path  # TMPDIR of the sandbox process: its temp dirs go here
    state: Path  # the fake FHIR server's pid and progress files
    output: list[str]

    def wait_for(self, what: Callable[[], bool], label: str) -> None:
        deadline = time.monotonic() + START_S
        while not what():
            assert self.proc.poll() is None, f"the sandbox exited ({self.proc.returncode}) before {label}"
            assert time.monotonic() < deadline, f"no {label} within {START_S:.0f}s"
            time.sleep(0.05)

    def read_until(self, marker: str) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if marker in line:
                return "".join(self.output)
        raise AssertionError(f"{marker!r} never printed:\n{''.join(self.output)}")

    def fhir_pid(self) -> int:
        return int((self.state / "pid").read_text(encoding="utf-8"))

    def stop(self, signum: int) -> tuple[int, str]:
        self.proc.send_signal(signum)
        out, _ = self.proc.communicate(timeout=30)
        return self.proc.returncode, "".join(self.output) + out


def _fake_venv(path: Path) -> Path:
    """A venv ``sandbox.fhir_server`` takes as installed, whose ``sekmet`` is the fake."""
    sekmet = path / "bin" / "sekmet"
    sekmet.parent.mkdir(parents=True)
    sekmet.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n', encoding="utf-8")
    sekmet.chmod(0o755)
    (path / ".myositis-cds-constraints.sha256").write_text(fhir_server._constraints_digest() + "\n", encoding="utf-8")
    assert fhir_server.is_installed(path)
    return path


def _ignore_sigint() -> None:
    # What a shell does to a job started with "&": the bug was that Ctrl-C / kill -INT then did nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture
def start_sandbox(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []
    venv = _fake_venv(tmp_path / "venv")

    def start(mode: str, *args: str, env: dict[str, str] | None = None, sigint_ignored: bool = False) -> Sandbox:
        tmp, state = tmp_path / f"tmp{len(started)}", tmp_path / f"state{len(started)}"
        tmp.mkdir()
        state.mkdir()
        environ = {k: v for k, v in os.environ.items() if k != "MYOSITIS_CDS_CORS_ORIGINS"}
        environ.update(
            {
                "PYTHONPATH": str(ROOT),
                "PYTHONUNBUFFERED": "1",
                "TMPDIR": str(tmp),
                "MYOSITIS_CDS_FHIR_VENV": str(venv),
                "FAKE_SEKMET_MODE": mode,
                "FAKE_SEKMET_STATE": str(state),
                **(env or {}),
            }
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "sandbox", "--port", "0", "--service-port", "0", *args],
            cwd=tmp_path,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        sandbox = Sandbox(proc, tmp, state, [])
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:  # a failed assertion must not leave processes behind
        if sandbox.proc.poll() is None:
            sandbox.proc.kill()
            sandbox.proc.communicate()
        if (sandbox.state / "pid").exists():
            _kill_quietly(sandbox.fhir_pid())


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _running(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie, already exited, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _assert_all_gone(sandbox: Sandbox, code: int, output: str) -> None:
    assert code == 0, output
    assert "Stopped." in output, output
    assert not _running(sandbox.fhir_pid()), "the FHIR child process outlived the sandbox"
    assert list(sandbox.tmp.iterdir()) == [], "temp dirs left behind"


@pytest.mark.parametrize(
    ("signum", "sigint_ignored"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGHUP, False)],
    ids=["sigint", "sigint-from-a-background-job", "sigterm", "sighup"],
)
def test_a_signal_while_the_fhir_server_starts_stops_everything(
    start_sandbox: Callable[..., Sandbox], signum: int, sigint_ignored: bool
) -> None:
    sandbox = start_sandbox("hang", sigint_ignored=sigint_ignored)
    sandbox.wait_for(lambda: (sandbox.state / "pid").exists(), "FHIR child")
    code, output = sandbox.stop(signum)
    assert "sandbox is running" not in output
    _assert_all_gone(sandbox, code, output)


def test_ctrl_c_while_the_patients_load_stops_everything(start_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = start_sandbox("hang-load", sigint_ignored=True)
    sandbox.wait_for(lambda: (sandbox.state / "loading").exists(), "transaction POST")
    code, output = sandbox.stop(signal.SIGINT)
    _assert_all_gone(sandbox, code, output)


def _service_url(output: str) -> str:
    match = re.search(r"CDS service \(.*\): (http://127\.0\.0\.1:\d+)/cds-services", output)
    assert match, output
    return match.group(1)


def _allowed(service: str, origin: str) -> str | None:
    """What the service answers a browser's CORS preflight for a hook call from ``origin``."""
    response = requests.options(
        f"{service}/cds-services/myositis-next-line",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )
    return response.headers.get("Access-Control-Allow-Origin")


@pytest.mark.parametrize(
    ("args", "env", "allowed", "refused"),
    [
        ((), {}, "https://sandbox.cds-hooks.org", LOCAL_SANDBOX),
        ((), {"MYOSITIS_CDS_CORS_ORIGINS": LOCAL_SANDBOX}, LOCAL_SANDBOX, "https://sandbox.cds-hooks.org"),
        (
            ("--cors-origin", LOCAL_SANDBOX),
            {"MYOSITIS_CDS_CORS_ORIGINS": "https://other.example"},
            LOCAL_SANDBOX,
            "https://other.example",
        ),
    ],
    ids=["default", "environment", "option-beats-environment"],
)
def test_the_running_sandbox_answers_cors_for_its_origins_and_sigterm_stops_it(
    start_sandbox: Callable[..., Sandbox],
    args: tuple[str, ...],
    env: dict[str, str],
    allowed: str,
    refused: str,
) -> None:
    sandbox = start_sandbox("ok", "--no-require-token", *args, env=env)
    output = sandbox.read_until("Press Ctrl-C")
    assert f"browser origins allowed (CORS): {allowed}" in output
    service = _service_url(output)
    assert _allowed(service, allowed) == allowed
    assert _allowed(service, refused) is None
    code, output = sandbox.stop(signal.SIGTERM)
    _assert_all_gone(sandbox, code, output)
