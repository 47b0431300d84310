"""Hostile load (issue 19): normal-call p50 while something hostile is in flight, as a ratio to quiet.

The production shape on loopback (docker-compose.yml): nginx with ``deploy/nginx.conf`` (ports and paths
rewritten on the lines marked ``# bench:``; ``least_conn`` across the instances) in front of two service
instances, each gunicorn 2 workers x 4 threads (``service.wsgi:app``), sharing one SQLite file here (one
PostgreSQL in compose). Without an ``nginx`` binary the clients talk to the first instance directly, and the
table says so.

Phases, each measuring ``n`` normal calls (reference patient, full prefetch) one after another:

* quiet;
* (a) 16 slow-body clients: headers with ``Content-Length: 1000``, one byte, then nothing;
* (b) 4 no-prefetch calls against a FHIR server that drips one byte every 0.5 s;
* (c) a hook call with 40,000 Medication references in its prefetch, sent again and again.

Worker peak RSS is the largest ``VmHWM`` of the gunicorn workers after all phases.
``python -m bench.hostile`` runs this alone; ``python -m bench`` runs it as its last phase.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from bench.latency import HOOK_PATH, Client, summarize
from bench.patients import REFERENCE, hook_body
from bench.report import Row, format_table
from bench.servers import HOST, REPO, ServerConfig, free_port, gunicorn_server, service_env, worker_pids

__all__ = ["Hostile", "run", "rows"]

SLOW_CLIENTS = 16
DRIP_CALLS = 4
DRIP_INTERVAL_S = 0.5
REFERENCES = 40_000
BIG_CALLS_SEEN = 3  # big calls that must complete while the normal calls of phase (c) are timed
TARGET_RATIO = 3.0
TARGET_RSS_MIB = 300


@dataclass(frozen=True, slots=True)
class Hostile:
    front: str  # "nginx" or "gunicorn (no nginx binary)"
    quiet_ms: float
    slow_body_ms: float
    drip_ms: float
    big_prefetch_ms: float
    peak_rss_mib: float
    n: int
    big_prefetch_bytes: int
    big_prefetch_calls: int


def _timed_calls(port: int, body: bytes, n: int, until: Callable[[], bool] | None = None) -> float:
    """p50 of at least ``n`` normal calls, and more until ``until()`` holds (at most 60 s)."""
    client = Client(HOST, port)
    samples: list[float] = []
    deadline = time.monotonic() + 60
    try:
        while len(samples) < n or (until is not None and not until() and time.monotonic() < deadline):
            t0 = time.perf_counter()
            status, data = client.post(HOOK_PATH, body)
            samples.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"normal call answered {status}: {data[:200]!r}")
    finally:
        client.close()
    return summarize(samples).p50_ms


@contextlib.contextmanager
def _nginx(upstream_port: int, workdir: Path, upstream2_port: int | None = None) -> Iterator[int | None]:
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        yield None
        return
    port = free_port()
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    replacements = {
        "pid": f"pid {workdir / 'nginx.pid'};",
        "error_log": f"error_log {workdir / 'nginx-error.log'} warn;",
        "upstream": f"server {HOST}:{upstream_port};",
        "upstream2": f"server {HOST}:{upstream2_port};" if upstream2_port else "# one instance",
        "listen": f"listen {HOST}:{port};",
    }
    lines = []
    for line in conf.splitlines():
        marker = re.search(r"# bench: (\w+)", line)
        if marker:
            indent = line[: len(line) - len(line.lstrip())]
            line = indent + replacements[marker.group(1)]
        lines.append(line)
    # The bench's normal client sends many requests from one address: no per-address request rate here.
    text = "\n".join(lines).replace("limit_req zone=req_per_ip burst=20 nodelay;", "")
    path = workdir / "nginx.conf"
    path.write_text(text + "\n")
    (workdir / "nginx-tmp").mkdir(exist_ok=True)
    process = subprocess.Popen(
        [binary, "-c", str(path), "-p", str(workdir / "nginx-tmp"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
                break
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.poll() is None:
            process.kill()


@contextlib.contextmanager
def _slow_body_clients(port: int, count: int) -> Iterator[list[socket.socket]]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.create_connection((HOST, port), timeout=5)
            sock.sendall(
                f"POST {HOOK_PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n{".encode()
            )
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


class _Drip(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        with contextlib.suppress(OSError):
            while not self.server.stop.wait(DRIP_INTERVAL_S):
                self.wfile.write(b" ")
                self.wfile.flush()


@contextlib.contextmanager
def _dripping_calls(port: int, count: int) -> Iterator[None]:
    server = ThreadingHTTPServer((HOST, 0), _Drip)
    server.daemon_threads = True
    server.stop = threading.Event()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    body = orjson.dumps(
        hook_body(REFERENCE, prefetch=False, fhir_server=f"http://{HOST}:{server.server_address[1]}/fhir")
    )
    stop = threading.Event()

    def caller() -> None:
        client = Client(HOST, port, timeout_s=60)
        try:
            while not stop.is_set():
                client.post(HOOK_PATH, body)  # 412 after the 8 s deadline, then again
        except OSError:
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # let every caller reach the dripping server
    try:
        yield
    finally:
        stop.set()
        server.stop.set()  # type: ignore[attr-defined]
        server.shutdown()
        server.server_close()
        for t in threads:
            t.join(15)


def big_prefetch_body() -> bytes:
    body = hook_body(REFERENCE)
    pid = body["context"]["patientId"]
    body["fhirServer"] = f"http://{HOST}:9/fhir"  # references count as this server's; nothing listens (reads fail fast)
    body["prefetch"]["medicationStatements"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationStatement",
                    "id": f"s{i}",
                    "status": "completed",
                    "medicationReference": {"reference": f"Medication/m{i}"},
                    "subject": {"reference": f"Patient/{pid}"},
                }
            }
            for i in range(REFERENCES)
        ],
    }
    return orjson.dumps(body)


@contextlib.contextmanager
def _big_prefetch_calls(port: int, body: bytes, counter: list[int]) -> Iterator[None]:
    stop = threading.Event()

    def caller() -> None:
        client = Client(HOST, port, timeout_s=120)
        try:
            while not stop.is_set():
                status, data = client.post(HOOK_PATH, body)
                if status != 200:
                    raise RuntimeError(f"40,000-reference call answered {status}: {data[:200]!r}")
                counter[0] += 1
        finally:
            client.close()

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    time.sleep(0.5)
    try:
        yield
    finally:
        stop.set()
        thread.join(120)


def _peak_rss_mib(master_pid: int) -> float:
    peak = 0
    for pid in worker_pids(master_pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def run(workdir: Path, n: int = 40) -> Hostile:
    env = service_env(str(workdir / "hostile.db"), ALLOW_INSECURE_LOCAL_FHIR="true")
    normal = orjson.dumps(hook_body(REFERENCE))
    big = big_prefetch_body()
    # As docker-compose.yml deploys it: two instances (2 workers x 4 threads each) behind nginx, here on one
    # SQLite file (compose: one PostgreSQL). Without nginx the clients talk to the first instance alone.
    with (
        gunicorn_server("service-hostile", "service.wsgi:app", env, ServerConfig(workers=2), workdir) as served,
        gunicorn_server("service-hostile-2", "service.wsgi:app", env, ServerConfig(workers=2), workdir) as served2,
        _nginx(served.port, workdir, served2.port) as nginx_port,
    ):
        port = nginx_port or served.port
        _timed_calls(port, normal, 10)  # warm-up
        quiet = _timed_calls(port, normal, n)
        with _slow_body_clients(port, SLOW_CLIENTS):
            slow = _timed_calls(port, normal, n)
        with _dripping_calls(port, DRIP_CALLS):
            drip = _timed_calls(port, normal, n)
        done = [0]
        with _big_prefetch_calls(port, big, done):
            # Normal calls until several big calls have run whole: the phase must cover them, not the
            # time nginx spends reading the first 7 MiB body before a worker sees it.
            heavy = _timed_calls(port, normal, n, until=lambda: done[0] >= BIG_CALLS_SEEN)
        rss = max(_peak_rss_mib(served.pid), _peak_rss_mib(served2.pid))
    return Hostile(
        "nginx" if nginx_port else "gunicorn (no nginx binary)", quiet, slow, drip, heavy, rss, n, len(big), done[0]
    )


def rows(h: Hostile) -> list[Row]:
    def ratio_row(label: str, value: float, why: str) -> Row:
        return Row(
            "6",
            f"{label} (n={h.n}, via {h.front})",
            f"{value:.2f} ms",
            f"{h.quiet_ms:.2f} ms (quiet p50)",
            value / h.quiet_ms,
            target=f"<= {TARGET_RATIO:g}x",
            check=lambda r: r <= TARGET_RATIO,
            why_not=why,
        )

    return [
        ratio_row(
            f"hostile: p50 with {SLOW_CLIENTS} slow-body clients",
            h.slow_body_ms,
            "gunicorn reads request bodies on its worker threads; without nginx in front, slow bodies hold them.",
        ),
        ratio_row(
            f"hostile: p50 with {DRIP_CALLS} calls on a dripping FHIR server",
            h.drip_ms,
            "the dripping calls hold request threads (2 workers x 4) until their 8 s FHIR deadline.",
        ),
        ratio_row(
            f"hostile: p50 with a {REFERENCES:,}-reference prefetch in flight",
            h.big_prefetch_ms,
            f"each {h.big_prefetch_bytes / 2**20:.1f} MiB call is CPU work (JSON, the capped record) on the same 2 "
            "cores as the normal calls.",
        ),
        Row(
            "6",
            f"hostile: worker peak RSS (VmHWM; {h.big_prefetch_calls} big-prefetch calls served)",
            f"{h.peak_rss_mib:.0f} MiB",
            f"{TARGET_RSS_MIB} MiB (target)",
            h.peak_rss_mib / TARGET_RSS_MIB,
            target=f"< {TARGET_RSS_MIB} MiB",
            check=lambda m: m < TARGET_RSS_MIB,
            judged=h.peak_rss_mib,
        ),
    ]


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="myositis-hostile-"))
    try:
        result = run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(rows(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
