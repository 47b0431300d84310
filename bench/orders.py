"""Order hooks (issue 18): p50 of an order-select and an order-sign call as ratios to the patient-view call
on the same patient, one run, one server.

    .venv/bin/python -m bench.orders [--n 400] [--out bench/RESULTS.md]

The service runs as ``myositis-cds serve`` does (gunicorn, 1 worker, gthread x 4), one keep-alive client.
Each call is the reference patient's full prefetch; the order calls add one draft order (rituximab, whose
class failed: a card with a delete and a replacement draft is built, so the order path is measured whole).
Every request names another patient id with the same record: suppression (issue 16) would otherwise hide
the cards after six unanswered shows and the bench would time empty answers. The three calls run in
alternating blocks, so a slow phase of the machine hits all three alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.latency import Client, percentile
from bench.patients import REFERENCE, hook_body
from bench.sections import replace_section
from bench.servers import HOST, ServerConfig, gunicorn_server, service_env

__all__ = ["run", "main", "PATHS"]

PATHS = {
    "patient-view": "/cds-services/myositis-next-line",
    "order-select": "/cds-services/myositis-order-select",
    "order-sign": "/cds-services/myositis-order-sign",
}
_BLOCK = 25


def _bodies(hook: str, n: int) -> list[bytes]:
    """``n`` requests for ``hook``, each under its own patient id with the reference patient's record."""
    from service.offline import draft_medication_order

    base: dict[str, Any] = hook_body(REFERENCE)
    pid = base["context"]["patientId"]
    if hook != "patient-view":
        order = draft_medication_order(pid, "121191", "rituximab", "bench-draft-1")
        base["hook"] = hook
        base["context"]["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": order}],
        }
        if hook == "order-select":
            base["context"]["selections"] = ["MedicationRequest/bench-draft-1"]
    raw = json.dumps(base).encode()
    return [raw.replace(pid.encode(), f"bench-{hook}-{i}".encode()) for i in range(n)]


def run(n: int = 400, warmup: int = 30) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {hook: [] for hook in PATHS}
    bodies = {hook: _bodies(hook, n + warmup) for hook in PATHS}
    with tempfile.TemporaryDirectory(prefix="myositis-orders-bench-") as tmp:
        env = service_env(f"{tmp}/bench.sqlite3")
        with gunicorn_server("service", "service.wsgi:app", env, ServerConfig(), Path(tmp)) as served:
            client = Client(HOST, served.port)
            for hook, path in PATHS.items():  # warm-up, and each answer checked once
                for body in bodies[hook][:warmup]:
                    status, data = client.post(path, body)
                    assert status == 200, data[:300]
                assert hook == "patient-view" or json.loads(data)["cards"], f"{hook}: no card built"
            index = warmup
            while index < warmup + n:
                for hook, path in PATHS.items():
                    for body in bodies[hook][index : index + _BLOCK]:
                        started = time.perf_counter()
                        status, _ = client.post(path, body)
                        samples[hook].append((time.perf_counter() - started) * 1000)
                        assert status == 200
                index += _BLOCK
            client.close()
    return samples


def section(samples: dict[str, list[float]]) -> str:
    p50 = {hook: statistics.median(values) for hook, values in samples.items()}
    rows = [
        f"| {hook} | {len(values)} | {p50[hook]:.2f} | {percentile(sorted(values), 95):.2f} | "
        f"{p50[hook] / p50['patient-view']:.2f}x |"
        for hook, values in samples.items()
    ]
    doc = " ".join((__doc__ or "").split("\n\n")[2].split())
    return "\n".join(
        [
            "Regenerate with `python -m bench.orders --out bench/RESULTS.md`. " + doc,
            "",
            "| call | n | p50 ms | p95 ms | p50 / patient-view |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orders", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--out", type=Path, help="write the section into this results file (e.g. bench/RESULTS.md)")
    args = parser.parse_args(argv)
    if not 10 <= args.n <= 100_000:
        parser.error("--n must be in [10, 100000]")
    text = section(run(args.n))
    print(text)
    if args.out:
        replace_section(args.out, "Order hooks (issue 18)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
