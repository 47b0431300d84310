"""Storage back-ends side by side (issue 17): SQLite file vs PostgreSQL, in one run, as ratios.

    .venv/bin/python -m bench.storage [--n 400] [--out bench/RESULTS.md]

* feedback: items/s stored durably (one item per transaction, as the route does), 4 threads;
* replay: jti claims/s, 4 threads;
* hook latency: the service under gunicorn (1 worker) on each back-end, the reference patient, requests
  alternated in blocks between the two servers; p50 ratio PostgreSQL / SQLite (target: within noise, <= 1.10).

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


def _latencies(port: int, body: bytes, n: int) -> list[float]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    out = []
    try:
        for _ in range(n):
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


def run(n: int = 400) -> dict[str, float]:
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
        with (
            gunicorn_server("hook-sqlite", "service.wsgi:app", sq_env, ServerConfig(workers=1), work) as sq,
            gunicorn_server("hook-pg", "service.wsgi:app", pg_env, ServerConfig(workers=1), work) as pg,
        ):
            _latencies(sq.port, body, 30)
            _latencies(pg.port, body, 30)
            lat: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
            for _ in range(max(1, n // 50)):  # alternate blocks: machine load hits both alike
                lat["sqlite"] += _latencies(sq.port, body, 50)
                lat["postgresql"] += _latencies(pg.port, body, 50)
        for name, values in lat.items():
            results[f"hook p50 ms {name}"] = statistics.median(values)
    return results


def section(r: dict[str, float], n: int) -> str:
    ratio = r["hook p50 ms postgresql"] / r["hook p50 ms sqlite"]
    rows = [
        ("feedback items stored per second (4 threads, fsynced)", "feedback/s"),
        ("jti claims per second (4 threads)", "replay/s"),
    ]
    lines = [
        "Regenerate with `python -m bench.storage` (also part of `make bench`). "
        + " ".join((__doc__ or "").split("\n\n")[2].split()),
        "",
        "| measure | PostgreSQL | SQLite | ratio PostgreSQL / SQLite | target |",
        "|---|---|---|---|---|",
    ]
    for label, key in rows:
        pg, sq = r[f"{key} postgresql"], r[f"{key} sqlite"]
        lines.append(f"| {label} (n={n}) | {pg:.0f} | {sq:.0f} | {pg / sq:.2f} | context |")
    lines.append(
        f"| hook p50, reference patient, 1 worker | {r['hook p50 ms postgresql']:.2f} ms | "
        f"{r['hook p50 ms sqlite']:.2f} ms | {ratio:.2f} | <= {HOOK_TARGET:.2f} "
        f"({'met' if ratio <= HOOK_TARGET else 'NOT met'}) |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not 40 <= args.n <= 100_000:
        parser.error("--n must be in [40, 100000]")
    results = run(args.n)
    for key, value in results.items():
        print(f"{key:32} {value:10.2f}")
    if args.out:
        replace_section(args.out, "Storage back-ends (issue 17)", section(results, args.n))
    return 0 if results["hook p50 ms postgresql"] / results["hook p50 ms sqlite"] <= HOOK_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
