"""Cold start and memory.

Cold start is timed inside a fresh interpreter (import + ``create_app()``, which
loads terminology and knowledge), so an import cached by an earlier run in this
process cannot make it look fast. The floor is the same for a bare Flask app.

RSS is read from ``/proc/<pid>/status`` (VmRSS) of the gunicorn worker after
request 100 and request 1,000: growth between the two is what a leak looks like
(the first 100 requests are warm-up: lazy imports, caches, SQLite pages).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from bench.latency import HOOK_PATH, Client
from bench.servers import REPO, SANDBOX_TODAY, read_rss_kib, worker_pids

__all__ = ["ColdStart", "Rss", "cold_start", "rss_growth", "yaml_parse"]

_SERVICE_SNIPPET = """
import time, json
t0 = time.perf_counter()
from service import create_app
t1 = time.perf_counter()
app = create_app({"AUTH_ENABLED": False, "DATABASE": %(db)r, "LOG_LEVEL": "WARNING", "TODAY": %(today)r})
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "create_s": t2 - t1, "total_s": t2 - t0}))
"""

_FLOOR_SNIPPET = """
import time, json
t0 = time.perf_counter()
import orjson
from flask import Flask
t1 = time.perf_counter()
app = Flask("floor")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "create_s": t2 - t1, "total_s": t2 - t0}))
"""


@dataclass(frozen=True, slots=True)
class ColdStart:
    service_s: float  # median of import + create_app
    service_import_s: float
    service_create_s: float
    floor_s: float  # median of import flask + Flask()
    runs: int


@dataclass(frozen=True, slots=True)
class Rss:
    at_100_kib: list[int]  # per worker
    at_1000_kib: list[int]

    @property
    def growth_pct(self) -> float:
        return max((b - a) / a * 100 for a, b in zip(self.at_100_kib, self.at_1000_kib, strict=True))


def _time_snippet(code: str, timeout_s: float = 60.0) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYOSITIS_CDS_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=env,
        timeout=timeout_s,
        check=True,
    )
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def cold_start(runs: int = 3) -> ColdStart:
    service: list[dict[str, float]] = []
    floor: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        for i in range(runs):
            # Interleaved, so the OS page cache treats both alike (the first run of each warms it).
            service.append(_time_snippet(_SERVICE_SNIPPET % {"db": f"{tmp}/start-{i}.db", "today": SANDBOX_TODAY}))
            floor.append(_time_snippet(_FLOOR_SNIPPET))
    return ColdStart(
        service_s=statistics.median(r["total_s"] for r in service),
        service_import_s=statistics.median(r["import_s"] for r in service),
        service_create_s=statistics.median(r["create_s"] for r in service),
        floor_s=statistics.median(r["total_s"] for r in floor),
        runs=runs,
    )


def rss_growth(master_pid: int, client: Client, bodies: Sequence[bytes], total: int = 1000, mark: int = 100) -> Rss:
    """Send ``total`` requests (cycling ``bodies``) to a 1-worker server; VmRSS after ``mark`` and after ``total``."""
    pids = worker_pids(master_pid)
    if not pids:
        raise RuntimeError("no gunicorn worker found")
    at_mark: list[int] = []
    for i in range(total):
        status, data = client.post(HOOK_PATH, bodies[i % len(bodies)])
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {data[:200]!r}")
        if i + 1 == mark:
            at_mark = [read_rss_kib(p) for p in pids]
    if worker_pids(master_pid) != pids:
        raise RuntimeError("a gunicorn worker was replaced during the RSS run (crash or timeout)")
    return Rss(at_mark, [read_rss_kib(p) for p in pids])


def yaml_parse(repeats: int = 3) -> tuple[float, float, int]:
    """Seconds to parse ``cards/knowledge/*.yaml`` with ``yaml.safe_load`` (what start-up does, pure Python)
    and with libyaml's ``CSafeLoader`` (the floor: same files, same safe subset); best of ``repeats``."""
    import time

    import yaml

    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "cards" / "knowledge").glob("*.yaml"))]
    c_loader = getattr(yaml, "CSafeLoader", None)

    def best(load: Callable[[str], object]) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for text in texts:
                load(text)
            times.append(time.perf_counter() - t0)
        return min(times)

    pure = best(yaml.safe_load)
    fast = best(lambda text: yaml.load(text, Loader=c_loader)) if c_loader else float("nan")
    return pure, fast, len(texts)
