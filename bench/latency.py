"""Sequential hook latency over one persistent HTTP connection.

``http.client`` rather than ``requests``: the client's own overhead is part of
every sample, floor included, and ``requests`` adds ~0.3 ms per call that would
make the floor look slower and the ratio look better than it is.

Service and floor are measured in alternating short blocks so that a slow phase
of the machine (another process, a frequency change) hits both alike, and the
servers' own CPU time per request is read from /proc: unlike wall-clock time it
barely moves when other work shares the cores.
"""

from __future__ import annotations

import http.client
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Client", "Stats", "compare", "cpu_ms", "measure", "percentile", "summarize"]

HOOK_PATH = "/cds-services/myositis-next-line"


class Client:
    """One keep-alive connection; reconnects once if the server closed it."""

    def __init__(self, host: str, port: int, timeout_s: float = 30.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return self._conn

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        return self._send("POST", path, body, {"Content-Type": "application/json", "Accept": "application/json"})

    def get(self, path: str, accept: str = "application/json") -> tuple[int, bytes]:
        return self._send("GET", path, None, {"Accept": accept})

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class Stats:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms: float = float("nan")  # server CPU (user + system) per request, from /proc; robust to a busy machine


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pids: Sequence[int]) -> float:
    """User + system CPU time consumed so far by ``pids`` (Linux /proc/<pid>/stat, fields 14 and 15)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total * _TICK_MS


def percentile(sorted_ms: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted samples."""
    if not sorted_ms:
        return float("nan")
    rank = max(1, min(len(sorted_ms), round(q / 100 * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


def summarize(samples_ms: Sequence[float], cpu_total_ms: float | None = None) -> Stats:
    ordered = sorted(samples_ms)
    cpu = cpu_total_ms / len(ordered) if cpu_total_ms is not None and ordered else float("nan")
    return Stats(
        len(ordered),
        percentile(ordered, 50),
        percentile(ordered, 95),
        percentile(ordered, 99),
        statistics.fmean(ordered) if ordered else float("nan"),
        cpu,
    )


def measure(client: Client, body: bytes, n: int, *, path: str = HOOK_PATH, max_seconds: float = 60.0) -> list[float]:
    """``n`` sequential calls (fewer if ``max_seconds`` runs out); latency in ms of each 200 answer."""
    samples: list[float] = []
    deadline = time.monotonic() + max_seconds
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        status, data = client.post(path, body)
        elapsed = (time.perf_counter() - t0) * 1000
        if status != 200:
            raise RuntimeError(f"HTTP {status} from {path}: {data[:300]!r}")
        samples.append(elapsed)
    return samples


def compare(
    service: Client,
    floor: Client,
    body: bytes,
    n: int,
    *,
    warmup: int,
    service_pids: Sequence[int] = (),
    floor_pids: Sequence[int] = (),
    block: int = 20,
    max_seconds: float = 90.0,
) -> tuple[Stats, Stats]:
    """Service and floor on the same body: warm both, then alternate blocks of ``block`` calls.

    Short blocks: load from elsewhere on the machine comes and goes in seconds, and should hit
    both alike. With worker pids given, the workers' CPU time per request is recorded too.
    """
    measure(service, body, warmup)
    measure(floor, body, warmup)
    blocks = max(2, n // block)
    per_block = max(1, n // blocks)
    timed: dict[str, list[float]] = {"service": [], "floor": []}
    cpu: dict[str, float] = {"service": 0.0, "floor": 0.0}
    deadline = time.monotonic() + max_seconds
    for _ in range(blocks):
        for name, client, pids in (("service", service, service_pids), ("floor", floor, floor_pids)):
            before = cpu_ms(pids) if pids else 0.0
            timed[name] += measure(client, body, per_block, max_seconds=max(deadline - time.monotonic(), 0.1))
            cpu[name] += (cpu_ms(pids) - before) if pids else 0.0
        if time.monotonic() > deadline:
            break
    return (
        summarize(timed["service"], cpu["service"] if service_pids else None),
        summarize(timed["floor"], cpu["floor"] if floor_pids else None),
    )
