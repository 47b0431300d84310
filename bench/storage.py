"""Storage back-ends side by side (issue 17): SQLite file vs PostgreSQL, in one run, as ratios.

    .venv/bin/python -m bench.storage [--n 400] [--runs 3] [--out bench/RESULTS.md]

* feedback: items/s stored durably (one item per transaction, as the route does), 4 threads;
* replay: jti claims/s, 4 threads;
* hook latency: the service under gunicorn (1 worker) on each back-end, requests alternated in blocks between
  the two servers; p50 ratio PostgreSQL / SQLite (target: within noise, <= 1.10). Two loads: the reference
  patient again and again (after 6 unanswered shows suppression hides its cards: each call reads and updates
  the suppression state, records no card), and the reference record under a new patient id per request (as
  ``bench.load`` does: every card shown, each call writes the new states and records each card shown). On
  PostgreSQL a hook call's suppression check and write are one transaction, one round trip when the worker
  knows the patient's states or a new patient has none, three when another worker or instance changed them;
* with ``--runs N`` the whole measurement is repeated N times: the table shows the run with the median hook
  ratio (new patients) and the range of each ratio over the runs.

PostgreSQL is a throw-away local cluster (``bench/postgres.py``), fsync on, over loopback TCP.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from bench.postgres import postgres_cluster
from bench.sections import replace_section
from bench.servers import HOST, ServerConfig, gunicorn_server, service_env

__all__ = ["run", "main"]

THREADS = 4
HOOK_TARGET = 1.10


def _throughput(storage: Any, what: str, n: int) -> float:
    from service.storage import FeedbackItem

    def work(t: int) -> None:
        for i in range(n // THREADS):
            if what == "feedback":
                storage.feedback.record(
                    "svc",
                    [
                        FeedbackItem(
                            f"b-{t}-{i}-{uuid.uuid4().hex[:6]}",
                            "overridden",
                            (),
                            None,
                            None,
                            False,
                            "2026-11-23T10:00:00Z",
                        )
                    ],
                )
            else:
                storage.replay.claim("iss", uuid.uuid4().hex, int(time.time()) + 300)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (n // THREADS * THREADS) / (time.perf_counter() - started)


def _latencies(port: int, bodies: list[bytes]) -> list[float]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    out = []
    try:
        for body in bodies:
            t0 = time.perf_counter()
            conn.request(
                "POST", "/cds-services/myositis-next-line", body=body, headers={"Content-Type": "application/json"}
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return out


LOADS = {"": "reference patient, repeated", " new patients": "reference record, a new patient id per request"}


def run(n: int = 400) -> dict[str, float]:
    from bench.load import _as_patient
    from service.storage import open_storage
    from tests.support import hook_body

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="myositis-bench-storage-") as tmp, postgres_cluster() as cluster:
        work = Path(tmp)
        backends = {"sqlite": {"database": work / "b.sqlite3"}, "postgresql": {"url": cluster.new_database()}}
        for name, where in backends.items():
            storage = open_storage(**where)  # type: ignore[arg-type]
            for what in ("feedback", "replay"):
                _throughput(storage, what, THREADS * 10)  # warm-up: connections, pages
                results[f"{what}/s {name}"] = _throughput(storage, what, n)
            storage.close()
        secret = {"PATIENT_KEY_SECRET": "bench-" + uuid.uuid4().hex}
        sq_env = service_env(str(work / "hook.sqlite3"), **secret)
        pg_env = service_env(str(work / "unused.sqlite3"), DATABASE_URL=cluster.new_database(), **secret)
        body = orjson.dumps(hook_body("reference-dm"))

        def bodies(load: str, block: str, count: int) -> list[bytes]:
            # The same ids on both servers (each has its own database): both do the same work.
            return [_as_patient(body, f"{block}-{i}") if load else body for i in range(count)]

        with (
            gunicorn_server("hook-sqlite", "service.wsgi:app", sq_env, ServerConfig(workers=1), work) as sq,
            gunicorn_server("hook-pg", "service.wsgi:app", pg_env, ServerConfig(workers=1), work) as pg,
        ):
            for load in LOADS:
                for server in (sq, pg):
                    _latencies(server.port, bodies(load, "warm", 30))
            lat: dict[str, list[float]] = {f"{b}{load}": [] for load in LOADS for b in ("sqlite", "postgresql")}
            for block in range(max(1, n // 50)):  # alternate blocks: machine load hits both alike
                for load in LOADS:
                    lat[f"sqlite{load}"] += _latencies(sq.port, bodies(load, str(block), 50))
                    lat[f"postgresql{load}"] += _latencies(pg.port, bodies(load, str(block), 50))
        for name, values in lat.items():
            results[f"hook p50 ms {name}"] = statistics.median(values)
    for load in LOADS:
        results[f"hook ratio{load}"] = results[f"hook p50 ms postgresql{load}"] / results[f"hook p50 ms sqlite{load}"]
    return results


def section(r: dict[str, float], n: int, runs: list[dict[str, float]] | None = None) -> str:
    """``r``: the run shown; ``runs``: every run (the ranges), when the measurement was repeated."""
    runs = runs or [r]
    rows = [
        ("feedback items stored per second (4 threads, fsynced)", "feedback/s"),
        ("jti claims per second (4 threads)", "replay/s"),
    ]
    spread = f"; range over {len(runs)} runs" if len(runs) > 1 else ""
    lines = [
        f"Regenerate with `python -m bench.storage{f' --runs {len(runs)}' if len(runs) > 1 else ''}`"
        " (also part of `make bench`, one run). " + " ".join((__doc__ or "").split("\n\n")[2].split()),
        "",
        f"| measure | PostgreSQL | SQLite | ratio PostgreSQL / SQLite{spread} | target |",
        "|---|---|---|---|---|",
    ]

    def between(values: list[float]) -> str:
        return f" ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else ""

    for label, key in rows:
        pg, sq = r[f"{key} postgresql"], r[f"{key} sqlite"]
        ratios = between([run[f"{key} postgresql"] / run[f"{key} sqlite"] for run in runs])
        lines.append(f"| {label} (n={n}) | {pg:.0f} | {sq:.0f} | {pg / sq:.2f}{ratios} | context |")
    for load, label in LOADS.items():
        ratio = r[f"hook ratio{load}"]
        verdict = "met" if ratio <= HOOK_TARGET else "NOT met"
        if len(runs) > 1:
            verdict += f" in the median run; {sum(run[f'hook ratio{load}'] <= HOOK_TARGET for run in runs)} of {len(runs)} runs"
        lines.append(
            f"| hook p50, {label}, 1 worker (n={n}) | {r[f'hook p50 ms postgresql{load}']:.2f} ms | "
            f"{r[f'hook p50 ms sqlite{load}']:.2f} ms | {ratio:.2f}{between([run[f'hook ratio{load}'] for run in runs])} | "
            f"<= {HOOK_TARGET:.2f} ({verdict}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement; the table gives the range")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not 40 <= args.n <= 100_000:
        parser.error("--n must be in [40, 100000]")
    if not 1 <= args.runs <= 20:
        parser.error("--runs must be in [1, 20]")
    runs = []
    for number in range(args.runs):
        runs.append(run(args.n))
        print(f"run {number + 1}/{args.runs}")
        for key, value in runs[-1].items():
            print(f"  {key:36} {value:10.2f}")
    shown = sorted(runs, key=lambda r: r["hook ratio new patients"])[(len(runs) - 1) // 2]  # the median run
    if args.out:
        replace_section(args.out, "Storage back-ends (issue 17)", section(shown, args.n, runs))
    return 0 if all(shown[f"hook ratio{load}"] <= HOOK_TARGET for load in LOADS) else 1


if __name__ == "__main__":
    sys.exit(main())
