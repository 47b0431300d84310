"""Where a hook call spends its time: phase timings (unprofiled) and a cProfile of the hot path.

Runs the real app in this process through Flask's test client (no sockets, so
the profile is of the service, not of the HTTP stack). Two views:

* phases - the service's own per-request timings (gather/parse/facts/cards, and
  the rest of the request), captured from its access log record without a profiler;
* functions - cProfile over ``n`` requests, project functions by cumulative time
  per request, and the biggest self-time entries whatever module they are in.
  cProfile roughly doubles the cost of Python-heavy code: read its figures as shares.
"""

from __future__ import annotations

import cProfile
import logging
import pstats
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench.latency import HOOK_PATH
from bench.servers import REPO, SANDBOX_TODAY

__all__ = ["Hotspot", "Profile", "profile_all"]

_PHASES = ("gather_ms", "parse_ms", "facts_ms", "cards_ms")
_PROJECT_DIRS = ("service/", "mappings/", "cards/")


@dataclass(frozen=True, slots=True)
class Hotspot:
    where: str  # path:line(function)
    calls_per_request: float
    cum_ms: float  # per request, under the profiler
    self_ms: float


@dataclass(frozen=True, slots=True)
class Profile:
    label: str
    requests: int
    phases_ms: dict[str, float]  # median per request, unprofiled; "other" = duration - phases
    profiled_ms: float  # mean per request under cProfile
    project: list[Hotspot]  # project functions by cumulative time
    self_time: list[Hotspot]  # any function by self time
    components_ms: dict[str, float]  # single steps timed alone, unprofiled (median)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "request":
            self.records.append(dict(record.__dict__))


def _app(database: str) -> Any:
    from service import create_app

    return create_app({"AUTH_ENABLED": False, "DATABASE": database, "LOG_LEVEL": "WARNING", "TODAY": SANDBOX_TODAY})


def _short(filename: str) -> str:
    text = filename.replace(str(REPO) + "/", "")
    if "site-packages/" in text:
        text = text.split("site-packages/", 1)[1]
    elif "/lib/python3" in text:
        text = "stdlib:" + text.rsplit("/", 1)[1]
    return text


def profile_all(bodies: dict[str, bytes], n: int, warmup: int = 20, top: int = 15) -> list[Profile]:
    """One app for all bodies (as one worker would serve them); a ``Profile`` per body."""
    with tempfile.TemporaryDirectory(prefix="bench-prof-") as tmp:
        client = _app(f"{tmp}/prof.db").test_client()
        return [_profile_body(client, label, body, n, warmup, top) for label, body in bodies.items()]


def _profile_body(client: Any, label: str, body: bytes, n: int, warmup: int, top: int) -> Profile:
    def call() -> None:
        response = client.post(HOOK_PATH, data=body, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.data[:200]!r}")

    for _ in range(warmup):
        call()

    # Phases without the profiler: the service logs them on its access record.
    access = logging.getLogger("myositis_cds.access")
    capture = _Capture()
    old_level, old_propagate = access.level, access.propagate
    access.setLevel(logging.INFO)
    access.propagate = False  # keep the JSON lines off stderr
    access.addHandler(capture)
    try:
        for _ in range(n):
            call()
    finally:
        access.removeHandler(capture)
        access.setLevel(old_level)
        access.propagate = old_propagate
    phases: dict[str, float] = {}
    for key in (*_PHASES, "duration_ms"):
        values = [float(r[key]) for r in capture.records if key in r]
        phases[key] = statistics.median(values) if values else float("nan")
    phases["other_ms"] = phases["duration_ms"] - sum(phases[k] for k in _PHASES)

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        call()
    profiler.disable()
    profiled_ms = (time.perf_counter() - t0) / n * 1000

    stats = pstats.Stats(profiler)
    rows: list[Hotspot] = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]  # pstats.Stats.stats is undocumented, untyped
        rows.append(Hotspot(f"{_short(filename)}:{line}({func})", ncalls / n, cumtime / n * 1000, tottime / n * 1000))
    project = sorted((r for r in rows if r.where.startswith(_PROJECT_DIRS)), key=lambda r: r.cum_ms, reverse=True)
    self_time = sorted(rows, key=lambda r: r.self_ms, reverse=True)
    return Profile(label, n, phases, profiled_ms, project[:top], self_time[:top], _components(body, max(20, n)))


def _median_ms(fn: Any, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def _components(body: bytes, n: int) -> dict[str, float]:
    """The "other" steps of a request, one by one, without a profiler (read-only use of service internals)."""
    import uuid

    import orjson

    from service.hook_request import json_depth_exceeds, parse_hook_request
    from service.storage import IssuedCard, Show, SuppressionState, open_storage

    parsed = orjson.loads(body)
    keys = frozenset(parsed.get("prefetch", {}))
    out = {
        "orjson.loads(body) (for scale)": _median_ms(lambda: orjson.loads(body), n),
        "json_depth_exceeds(body, 64)": _median_ms(lambda: json_depth_exceeds(body, 64), n),
        "parse_hook_request(body) (typed decode + depth check)": _median_ms(
            lambda: parse_hook_request(body, expected_hook="patient-view", prefetch_keys=keys), n
        ),
    }
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        storage = open_storage(database=f"{tmp}/s.db")
        kinds = ("next-line", "urgent", "safety")

        def shows() -> list[Show]:
            return [
                Show(SuppressionState(k, "f" * 32, 1), IssuedCard(str(uuid.uuid4()), k, "info", "k" * 64, "f" * 32))
                for k in kinds
            ]

        out["suppression.states + record_shows(3 cards)"] = _median_ms(
            lambda: (
                storage.suppression.states("k" * 64),
                storage.suppression.record_shows("myositis-next-line", "k" * 64, shows()),
            ),
            n,
        )
        storage.close()
    return out
