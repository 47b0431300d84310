"""Requests per second with concurrent clients, for the service and its floor alike.

With ``wrk`` installed (Debian package ``wrk``) it is the load generator: a C
client takes far less of the 2 shared cores than Python clients would, so the
servers, not the client, are what is measured. Without it, client processes
with ``http.client`` keep-alive connections stand in (and the table says so).
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Throughput", "interleaved", "run"]

HOOK_PATH = "/cds-services/myositis-next-line"

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open("{body}", "rb"))
wrk.body = f:read("*a")
f:close()
"""


@dataclass(frozen=True, slots=True)
class Throughput:
    requests_per_s: float
    requests: int
    errors: int
    tool: str


def run(base_url: str, body: bytes, *, seconds: float, connections: int, workdir: Path) -> Throughput:
    if shutil.which("wrk"):
        return _wrk(base_url, body, seconds=seconds, connections=connections, workdir=workdir)
    return _python(base_url, body, seconds=seconds, connections=connections)


def interleaved(
    base_urls: dict[str, str],
    body: bytes,
    *,
    seconds: float,
    rounds: int,
    warmup_s: float,
    connections: int,
    workdir: Path,
) -> dict[str, Throughput]:
    """Round-robin ``rounds`` windows per server (all servers up, only one loaded at a time), so that
    load from elsewhere on the machine hits each alike; totals over all windows."""
    for url in base_urls.values():
        run(url, body, seconds=warmup_s, connections=connections, workdir=workdir)
    window = max(1.0, seconds / rounds)
    done: dict[str, list[Throughput]] = {name: [] for name in base_urls}
    for _ in range(rounds):
        for name, url in base_urls.items():
            done[name].append(run(url, body, seconds=window, connections=connections, workdir=workdir))
    out = {}
    for name, parts in done.items():
        total = sum(p.requests for p in parts)
        # wrk's own rate is per window (it knows the exact elapsed time): weight windows equally.
        rate = sum(p.requests_per_s for p in parts) / len(parts)
        out[name] = Throughput(rate, total, sum(p.errors for p in parts), f"{parts[0].tool}, {rounds} x {window:.0f} s")
    return out


def _wrk(base_url: str, body: bytes, *, seconds: float, connections: int, workdir: Path) -> Throughput:
    body_file = workdir / f"wrk-body-{len(body)}.json"
    if not body_file.exists():
        body_file.write_bytes(body)
    script = workdir / "post.lua"
    script.write_text(_WRK_SCRIPT.format(body=body_file))
    cmd = [
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base_url + HOOK_PATH,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    out = done.stdout
    rps_match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    total_match = re.search(r"([0-9]+) requests in", out)
    if rps_match is None or total_match is None:
        raise RuntimeError(f"unexpected wrk output: {out[:200]!r}")
    rps, total = float(rps_match.group(1)), int(total_match.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    socket_errors = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return Throughput(rps, total, errors, f"wrk, 1 thread, {connections} connections")


def _client_process(host: str, port: int, body: bytes, stop_at: float, queue: mp.Queue[Any]) -> None:
    """One client connection: POST back to back until ``stop_at`` (monotonic)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    ok = errors = 0
    headers = {"Content-Type": "application/json"}
    while time.monotonic() < stop_at:
        try:
            conn.request("POST", HOOK_PATH, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                ok += 1
            else:
                errors += 1
        except OSError:
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.close()
    queue.put((ok, errors))


def _python(base_url: str, body: bytes, *, seconds: float, connections: int) -> Throughput:
    parts = urlsplit(base_url)
    queue: mp.Queue[Any] = mp.Queue()
    start = time.monotonic() + 0.5  # let every process start before the clock runs
    stop_at = start + seconds
    procs = [
        mp.Process(target=_client_process, args=(parts.hostname, parts.port, body, stop_at, queue), daemon=True)
        for _ in range(connections)
    ]
    for proc in procs:
        proc.start()
    ok = errors = 0
    try:
        for _ in procs:
            got_ok, got_err = queue.get(timeout=seconds + 30)
            ok += got_ok
            errors += got_err
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
    # Requests started before ``start`` (process start-up overlap) are few; count over the nominal window.
    return Throughput(ok / seconds, ok, errors, f"python http.client, {connections} processes")
