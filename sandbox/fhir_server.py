"""The embedded sandbox FHIR server: ``sekmet-fhir`` in its own virtualenv.

Why a separate virtualenv: sekmet-fhir pins fast-moving packages (FastAPI,
pydantic, fhir.resources ...) that must not leak into the service's own
environment. It is installed on first use from the pinned constraints file
shipped next to this module, and then run as a subprocess::

    <venv>/bin/sekmet serve --config <tmp>/settings.yaml

with an in-memory SQLite store (a fresh store on every start), its workflow
simulator off, on 127.0.0.1 and a free port. Its ``base_url`` must match the
port because search ``next`` links are built from it.

The venv lives in ``$MYOSITIS_CDS_FHIR_VENV`` if set, else ``<repo>/.venv-fhir``
for a source checkout, else ``~/.cache/myositis-cds/venv-fhir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

__all__ = [
    "CONSTRAINTS_FILE",
    "FHIR_VENV_ENV",
    "SEKMET_REQUIREMENT",
    "FhirServerError",
    "FhirServerHandle",
    "default_venv_path",
    "embedded_fhir_server",
    "ensure_installed",
    "free_port",
    "is_installed",
]

FHIR_VENV_ENV = "MYOSITIS_CDS_FHIR_VENV"
CONSTRAINTS_FILE = Path(__file__).with_name("fhir-constraints.txt")
SEKMET_REQUIREMENT = "sekmet-fhir==0.1.1"
_MARKER = ".myositis-cds-constraints.sha256"
_PIP_TIMEOUT_S = 900.0
_STOP_GRACE_S = 5.0


class FhirServerError(RuntimeError):
    """The embedded FHIR server could not be installed, started or reached."""


@dataclass(frozen=True, slots=True)
class FhirServerHandle:
    """A running embedded server. ``base_url`` has no trailing slash."""

    base_url: str
    port: int
    pid: int
    log_path: Path
    bearer_token: str | None = None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}


# --------------------------------------------------------------------------- install


def default_venv_path() -> Path:
    env = os.environ.get(FHIR_VENV_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[1]
    # A source checkout (editable install, tests, CI): keep the venv beside the
    # code, as .gitignore expects. An installed wheel has no pyproject beside it.
    if (repo / "pyproject.toml").is_file() and os.access(repo, os.W_OK):
        return repo / ".venv-fhir"
    return Path.home() / ".cache" / "myositis-cds" / "venv-fhir"


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


def _constraints_digest() -> str:
    return hashlib.sha256(CONSTRAINTS_FILE.read_bytes() + SEKMET_REQUIREMENT.encode()).hexdigest()


def is_installed(venv: Path | None = None) -> bool:
    """True when ``venv`` holds sekmet-fhir installed from the current constraints."""
    venv = venv or default_venv_path()
    marker = venv / _MARKER
    return (
        _bin(venv, "sekmet").is_file()
        and marker.is_file()
        and marker.read_text(encoding="utf-8").strip() == _constraints_digest()
    )


@contextlib.contextmanager
def _install_lock(venv: Path) -> Iterator[None]:
    """Serialise concurrent installs (two pytest runs, a test and the CLI)."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv.parent / (venv.name + ".lock")
    with open(lock_path, "a+") as handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: best effort, no lock
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FhirServerError(f"could not {what}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
        raise FhirServerError(f"could not {what} (exit {proc.returncode}):\n  " + "\n  ".join(tail))


def ensure_installed(venv: Path | None = None, *, quiet: bool = True) -> Path:
    """Create the FHIR server's virtualenv and install sekmet-fhir into it if needed.

    Idempotent: a marker file records the digest of the constraints it was
    installed from, so a changed constraints file triggers a reinstall and an
    unchanged one costs a stat. Returns the path of the ``sekmet`` executable.
    Raises ``FhirServerError`` with pip's last lines when it cannot install
    (no network to PyPI, no ``venv`` module, ...).
    """
    venv = (venv or default_venv_path()).resolve()
    if is_installed(venv):
        return _bin(venv, "sekmet")
    with _install_lock(venv):
        if is_installed(venv):  # another process finished while we waited
            return _bin(venv, "sekmet")
        python = _bin(venv, "python")
        if not python.is_file():
            if venv.exists():
                shutil.rmtree(venv)  # a half-made venv from an interrupted run
            _run([sys.executable, "-m", "venv", str(venv)], f"create a virtualenv at {venv}")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("-q")
        _run(
            [*pip, "-c", str(CONSTRAINTS_FILE), SEKMET_REQUIREMENT],
            f"install {SEKMET_REQUIREMENT} into {venv} (needs access to PyPI)",
        )
        sekmet = _bin(venv, "sekmet")
        if not sekmet.is_file():
            raise FhirServerError(f"{SEKMET_REQUIREMENT} installed but {sekmet} is missing")
        (venv / _MARKER).write_text(_constraints_digest() + "\n", encoding="utf-8")
        return sekmet


# --------------------------------------------------------------------------- run


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _settings(port: int, data_dir: Path, bearer_token: str | None) -> dict[str, object]:
    settings: dict[str, object] = {
        "base_url": f"http://127.0.0.1:{port}/fhir",
        "host": "127.0.0.1",
        "port": port,
        "db_path": ":memory:",
        "data_dir": str(data_dir),
        "own_private_key_path": str(data_dir / "keys" / "sekmet_private.pem"),
        "simulator": {"enabled": False},
        "log_inbound": False,
    }
    if bearer_token:
        # A static bearer token: lets a test prove the CDS service really
        # sends fhirAuthorization.access_token on its own FHIR reads.
        settings["server_auth"] = {"types": ["bearer"], "tokens": [bearer_token]}
    return settings


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n  ".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    session = requests.Session()
    session.trust_env = False  # loopback only; a proxy setting must not intercept it
    try:
        while True:
            if proc.poll() is not None:
                raise FhirServerError(
                    f"the FHIR server exited with code {proc.returncode} before it was ready:\n  {_log_tail(log_path)}"
                )
            try:
                if session.get(f"{base_url}/metadata", timeout=1.0).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise FhirServerError(
                    f"the FHIR server did not answer {base_url}/metadata within {timeout:.0f}s:\n  {_log_tail(log_path)}"
                )
            time.sleep(0.1)
    finally:
        session.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_STOP_GRACE_S)


@contextlib.contextmanager
def embedded_fhir_server(
    port: int | None = None,
    *,
    bearer_token: str | None = None,
    startup_timeout: float = 60.0,
    venv: Path | None = None,
    keep_log: Path | None = None,
) -> Iterator[FhirServerHandle]:
    """Start a fresh sekmet-fhir server on 127.0.0.1 and stop it on exit.

    ``port=None`` picks a free port. With ``bearer_token`` the server accepts
    only that token. The server's output goes to a log file (its path is on
    the handle); ``keep_log`` copies it somewhere before the temp dir goes.
    """
    sekmet = ensure_installed(venv)
    with tempfile.TemporaryDirectory(prefix="myositis-cds-fhir-") as tmp:
        work = Path(tmp)
        chosen = port or free_port()
        config = work / "settings.yaml"
        config.write_text(yaml.safe_dump(_settings(chosen, work / "data", bearer_token)), encoding="utf-8")
        log_path = work / "sekmet.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")}  # no stray overrides
        env["SEKMET_CONFIG"] = str(config)
        base_url = f"http://127.0.0.1:{chosen}/fhir"
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(
                    [str(sekmet), "serve", "--config", str(config)],
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            except OSError as exc:
                raise FhirServerError(f"could not start {sekmet}: {exc}") from exc
            try:
                _wait_ready(proc, base_url, log_path, startup_timeout)
                yield FhirServerHandle(base_url, chosen, proc.pid, log_path, bearer_token)
            finally:
                _stop(proc)
                if keep_log is not None:
                    with contextlib.suppress(OSError):
                        shutil.copyfile(log_path, keep_log)
