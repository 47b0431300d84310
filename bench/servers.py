"""Start and stop the servers the benchmarks talk to, on loopback, with guaranteed cleanup.

* ``gunicorn_server``: the service (``service.wsgi:app``) or the Flask floor
  (``bench.floor_app:app``) under gunicorn in its own process group, so the
  master and every worker are killed on exit, even when the benchmark fails.
* ``fhir_stub``: a tiny threaded ``http.server`` in this process that answers the
  reference patient's FHIR reads and searches, each after a fixed delay.

Everything binds 127.0.0.1; nothing here ever talks to another address.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = [
    "HOST",
    "REPO",
    "Served",
    "ServerConfig",
    "free_port",
    "fhir_stub",
    "gunicorn_server",
    "read_rss_kib",
    "service_env",
    "worker_pids",
    "SANDBOX_TODAY",
]

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
SANDBOX_TODAY = "2026-11-23"  # the example patients' dates are fixed around it (sandbox/appserver.py)
_READY_TIMEOUT_S = 120.0  # a loaded CI machine starts gunicorn slowly
_STOP_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How gunicorn serves an app; the service and its floor always get the same one."""

    workers: int = 1
    worker_class: str = "gthread"  # what `myositis-cds serve` uses in production
    threads: int = 4

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"gunicorn {self.workers} worker(s), {self.worker_class}{threads}"


@dataclass(slots=True)
class Served:
    name: str
    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid


def service_env(database: str, *, log_level: str = "WARNING", **settings: str) -> dict[str, str]:
    """Environment for ``service.wsgi:app``: no client auth, a throw-away database, pinned "today"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYOSITIS_CDS_")}
    env.update(
        {
            "MYOSITIS_CDS_AUTH_ENABLED": "false",
            "MYOSITIS_CDS_DATABASE": database,
            "MYOSITIS_CDS_LOG_LEVEL": log_level,
            "MYOSITIS_CDS_TODAY": SANDBOX_TODAY,
            # Benches measure throughput; the per-issuer feedback budget (service/ratelimit.py) has its own tests.
            "MYOSITIS_CDS_FEEDBACK_ITEMS_PER_MINUTE": "10000000",
        }
    )
    env.update({f"MYOSITIS_CDS_{k}": v for k, v in settings.items()})
    env["PYTHONPATH"] = str(REPO)
    return env


def _wait_ready(port: int, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}; log:\n{_tail(log_path)}")
        conn = http.client.HTTPConnection(HOST, port, timeout=1.0)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()  # also after a time-out: an unclosed socket is a ResourceWarning (an error in tests)
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} not ready after {timeout_s:.0f} s; log:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (gunicorn master + workers), then SIGKILL what is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    # Workers may outlive a master that died first: the group kill reaches them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_STOP_TIMEOUT_S)


@contextlib.contextmanager
def gunicorn_server(name: str, app: str, env: dict[str, str], config: ServerConfig, workdir: Path) -> Iterator[Served]:
    """Run ``gunicorn <app>`` on a free loopback port until the block ends."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        # What `myositis-cds serve` runs with: prometheus multiprocess directory, /metrics on METRICS_PORT.
        "--config",
        "python:service.gunicorn_conf",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(config.workers),
        "--worker-class",
        config.worker_class,
        "--threads",
        str(config.threads),
        "--timeout",
        "30",
        "--graceful-timeout",
        "2",
        "--log-level",
        "warning",
        "--keep-alive",
        "30",  # one persistent client connection for the whole latency run
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            env=env,
            cwd=str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_ready(port, process, log_path, _READY_TIMEOUT_S)
        _wait_workers(process.pid, config.workers)
        yield Served(name, f"http://{HOST}:{port}", port, process, log_path)
    finally:
        _kill_group(process)


def _wait_workers(master_pid: int, count: int, timeout_s: float = 10.0) -> None:
    """Readiness of one worker is not readiness of all: wait until ``count`` workers exist."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(worker_pids(master_pid)) < count:
        time.sleep(0.05)


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn workers: children of the master (Linux /proc)."""
    pids: set[int] = set()
    task_dir = Path(f"/proc/{master_pid}/task")
    with contextlib.suppress(OSError):
        for task in task_dir.iterdir():
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (task / "children").read_text().split())
    return sorted(pids)


def read_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --- FHIR stub ------------------------------------------------------------------------------


class _StubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the service's pooled session reuses connections
    server: _StubServer

    # Headers and body leave in one write, with Nagle off: two small writes would otherwise meet the
    # client's delayed ACK and add ~40 ms to every answer, measuring TCP rather than the service.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        time.sleep(self.server.delay_s)  # the "EHR" thinking: a fixed delay for every answer
        status, body = self.server.answer(self.path)
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            "Content-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        self.wfile.write(head + body)
        self.server.count_request()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, resources: list[dict[str, Any]], delay_s: float) -> None:
        super().__init__((HOST, 0), _StubHandler)
        self.delay_s = delay_s
        self.requests = 0
        self._lock = threading.Lock()
        self._by_type: dict[str, list[dict[str, Any]]] = {}
        for resource in resources:
            self._by_type.setdefault(resource["resourceType"], []).append(resource)
        self._cache: dict[str, bytes] = {}

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def answer(self, path: str) -> tuple[int, bytes]:
        """``/fhir/Patient/<id>`` reads and ``/fhir/<Type>?patient=..`` searches, answers built once."""
        parts = urlsplit(path)
        segments = [s for s in parts.path.split("/") if s][1:]  # drop the "fhir" base segment
        if len(segments) == 2:
            for resource in self._by_type.get(segments[0], []):
                if resource.get("id") == segments[1]:
                    return 200, orjson.dumps(resource)
            return 404, orjson.dumps(
                {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
            )
        if len(segments) == 1:
            cached = self._cache.get(path)
            if cached is None:
                found = self._by_type.get(segments[0], [])
                codes = parse_qs(parts.query).get("code")
                if codes:  # token OR-list: keep the Observations whose code is asked for
                    wanted = {c.split("|")[-1] for c in codes[0].split(",")}
                    found = [
                        r for r in found if any(c.get("code") in wanted for c in r.get("code", {}).get("coding", []))
                    ]
                cached = orjson.dumps(
                    {
                        "resourceType": "Bundle",
                        "type": "searchset",
                        "total": len(found),
                        "entry": [{"resource": r, "search": {"mode": "match"}} for r in found],
                    }
                )
                self._cache[path] = cached
            return 200, cached
        return 400, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}]}'


@contextlib.contextmanager
def fhir_stub(resources: list[dict[str, Any]], delay_s: float) -> Iterator[_StubServer]:
    """Serve ``resources`` as a FHIR server at ``http://127.0.0.1:<port>/fhir``; every answer waits ``delay_s``."""
    server = _StubServer(resources, delay_s)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fhir-stub", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=_STOP_TIMEOUT_S)
