"""Load test: the service under gunicorn (2 workers), concurrent clients for a bounded time.

    .venv/bin/python -m bench.load [--seconds 20] [--concurrency 8] [--workers 2] [--feedback-every 10]

Each client is its own process with one keep-alive connection; it sends the reference patient's
``patient-view`` request (full prefetch) and, every ``--feedback-every`` requests, a feedback post
accepting a suggestion of the card its last hook call returned. Prints throughput, latency percentiles, errors, and each worker's RSS
after warm-up and at the end. Exits 1 on any error. The server (master and workers, one process
group) is always killed at the end. Everything binds and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.servers import HOST, ServerConfig, gunicorn_server, read_rss_kib, service_env, worker_pids

__all__ = ["ClientResult", "LoadReport", "run", "main"]

SERVICE = "/cds-services/myositis-next-line"
FEEDBACK = SERVICE + "/feedback"
WARMUP_REQUESTS = 40
_CLIENT_TIMEOUT_S = 30.0


@dataclass
class ClientResult:
    hook_latencies_ms: list[float] = field(default_factory=list)
    feedback_latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    seconds: float
    concurrency: int
    workers: int
    requests: int
    hooks: int
    feedbacks: int
    errors: int
    error_samples: list[str]
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    feedback_p50_ms: float
    rss_start_kib: dict[int, int]
    rss_end_kib: dict[int, int]

    @property
    def rss_growth_pct(self) -> dict[int, float]:
        return {
            pid: 100.0 * (self.rss_end_kib[pid] - start) / start
            for pid, start in self.rss_start_kib.items()
            if pid in self.rss_end_kib and start
        }

    def lines(self) -> list[str]:
        out = [
            f"load: gunicorn {self.workers} workers (gthread x 4), {self.concurrency} client processes, "
            f"{self.seconds:.0f} s, loopback",
            f"  requests     {self.requests} ({self.hooks} patient-view, {self.feedbacks} feedback)",
            f"  throughput   {self.throughput_rps:.1f} req/s",
            f"  latency ms   p50 {self.p50_ms:.1f}   p95 {self.p95_ms:.1f}   p99 {self.p99_ms:.1f}   max {self.max_ms:.1f}"
            f"   (feedback p50 {self.feedback_p50_ms:.1f})",
            f"  errors       {self.errors}",
        ]
        for pid, start in sorted(self.rss_start_kib.items()):
            end = self.rss_end_kib.get(pid)
            if end is None:
                out.append(f"  worker {pid}: RSS {start / 1024:.1f} MiB at start; gone at the end (restarted?)")
            else:
                out.append(
                    f"  worker {pid}: RSS {start / 1024:.1f} -> {end / 1024:.1f} MiB ({self.rss_growth_pct[pid]:+.1f}%)"
                )
        out += [f"  error: {e}" for e in self.error_samples]
        return out


def hook_request_body() -> bytes:
    from tests.support import hook_body

    return json.dumps(hook_body("reference-dm")).encode()


def _as_patient(hook: bytes, number: str) -> bytes:
    """The reference patient's request under another patient id. Suppression (issue 16) hides a card shown
    unanswered six times to one patient, so a load of one patient would measure empty answers; a clinic
    opens many charts, so each request is a different patient with the same record."""
    from tests.support import patient_id_of

    return hook.replace(patient_id_of("reference-dm").encode(), f"load-{number}".encode())


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def _client(port: int, hook: bytes, start_at: float, stop_at: float, feedback_every: int, index: int) -> ClientResult:
    """One client process: requests back to back on one keep-alive connection until ``stop_at``."""
    result = ClientResult()
    conn = http.client.HTTPConnection(HOST, port, timeout=_CLIENT_TIMEOUT_S)
    while time.time() < start_at:
        time.sleep(0.005)
    n = 0
    answered: tuple[str, str] | None = None  # (card uuid, suggestion uuid) of the last answer, not yet acted on
    while time.time() < stop_at:
        n += 1
        # Feedback is taken only for cards the service issued (issue 19): accept a suggestion of the card the
        # last hook call returned, as a clinician would.
        is_feedback = feedback_every > 0 and n % feedback_every == 0 and answered is not None
        if is_feedback and answered is not None:
            item = {
                "card": answered[0],
                "outcome": "accepted",
                "acceptedSuggestions": [{"id": answered[1]}],
                "outcomeTimestamp": "2026-11-23T10:00:00Z",
            }
            path, body, answered = FEEDBACK, json.dumps({"feedback": [item]}).encode(), None
        else:
            path, body = SERVICE, _as_patient(hook, f"{index}-{n}")
        started = time.perf_counter()
        try:
            status, payload = _post(conn, path, body)
        except (OSError, http.client.HTTPException) as exc:
            result.errors.append(f"{path}: {type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=_CLIENT_TIMEOUT_S)
            continue
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            result.errors.append(f"{path}: HTTP {status}: {payload[:200]!r}")
            continue
        if is_feedback:
            if json.loads(payload) != {"received": 1, "stored": 1}:
                result.errors.append(f"{path}: unexpected answer {payload[:200]!r}")
                continue
            result.feedback_latencies_ms.append(elapsed)
        else:
            cards = json.loads(payload).get("cards")
            if not cards:
                result.errors.append(f"{path}: no cards for the reference patient")
                continue
            with_suggestion = next((c for c in cards if c.get("suggestions")), None)
            if with_suggestion is not None:
                answered = (with_suggestion["uuid"], with_suggestion["suggestions"][0]["uuid"])
            result.hook_latencies_ms.append(elapsed)
    conn.close()
    return result


def _warm_up(port: int, hook: bytes, count: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=_CLIENT_TIMEOUT_S)
    try:
        for n in range(count):
            status, payload = _post(conn, SERVICE, _as_patient(hook, f"warm-{n}"))
            if status != 200:
                raise RuntimeError(f"warm-up failed: HTTP {status}: {payload[:200]!r}")
    finally:
        conn.close()


def _rss(master_pid: int) -> dict[int, int]:
    out = {}
    for pid in worker_pids(master_pid):
        try:
            out[pid] = read_rss_kib(pid)
        except (OSError, RuntimeError):
            pass
    return out


def run(
    seconds: float = 20.0, concurrency: int = 8, workers: int = 2, feedback_every: int = 10, workdir: Path | None = None
) -> LoadReport:
    hook = hook_request_body()
    with tempfile.TemporaryDirectory(prefix="myositis-load-") as tmp:
        work = workdir or Path(tmp)
        env = service_env(str(work / "load.sqlite3"))
        with gunicorn_server("load", "service.wsgi:app", env, ServerConfig(workers=workers), work) as served:
            # every worker warm (terminology loaded, first requests done) before RSS "start"
            _warm_up(served.port, hook, WARMUP_REQUESTS * workers)
            rss_start = _rss(served.pid)
            ctx = multiprocessing.get_context("spawn")
            start_at = time.time() + 1.0 + 0.2 * concurrency  # spawn time, so every client starts together
            stop_at = start_at + seconds
            with ctx.Pool(concurrency) as pool:
                pending = [
                    pool.apply_async(_client, (served.port, hook, start_at, stop_at, feedback_every, i))
                    for i in range(concurrency)
                ]
                results = [p.get(timeout=seconds + 60 + 0.2 * concurrency) for p in pending]
            rss_end = _rss(served.pid)
    hooks = [x for r in results for x in r.hook_latencies_ms]
    feedbacks = [x for r in results for x in r.feedback_latencies_ms]
    errors = [e for r in results for e in r.errors]
    every = hooks + feedbacks
    return LoadReport(
        seconds=seconds,
        concurrency=concurrency,
        workers=workers,
        requests=len(every) + len(errors),
        hooks=len(hooks),
        feedbacks=len(feedbacks),
        errors=len(errors),
        error_samples=errors[:5],
        throughput_rps=len(every) / seconds,
        p50_ms=statistics.median(hooks) if hooks else float("nan"),
        p95_ms=_percentile(hooks, 95),
        p99_ms=_percentile(hooks, 99),
        max_ms=max(hooks, default=float("nan")),
        feedback_p50_ms=statistics.median(feedbacks) if feedbacks else float("nan"),
        rss_start_kib=rss_start,
        rss_end_kib=rss_end,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--feedback-every", type=int, default=10, help="every Nth request of a client is feedback (0: none)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 600 or not 0 < args.concurrency <= 64:
        parser.error("--seconds must be in (0, 600] and --concurrency in [1, 64]")
    report = run(args.seconds, args.concurrency, args.workers, args.feedback_every)
    print("\n".join(report.lines()))
    if args.json:
        figures: dict[str, Any] = {k: v for k, v in report.__dict__.items()}
        figures["rss_growth_pct"] = report.rss_growth_pct
        print(json.dumps(figures, default=str))
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
