"""The no-prefetch path: the service reads everything from a slow FHIR server.

The stub answers every read and search after a fixed delay (50 ms). The floor is
the slowest single query the service has to make, timed from this process over
a keep-alive connection; if the service runs its queries in parallel on one
pool and does no repeated work, its total is that plus its own processing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from bench.latency import Client, Stats, measure, summarize
from bench.patients import REFERENCE, hook_body

__all__ = ["NoPrefetch", "queries_for", "run_queries", "run_hook"]


@dataclass(frozen=True, slots=True)
class NoPrefetch:
    hook: Stats
    slowest_query: Stats
    slowest_query_path: str
    queries_per_hook: float  # stub requests per hook call: > the template count means repeated work


def queries_for(patient_id: str, observation_template: str) -> list[str]:
    """The reads and searches the service's prefetch templates make (paths under /fhir)."""
    return [
        f"/fhir/Patient/{patient_id}",
        f"/fhir/Condition?patient={patient_id}",
        f"/fhir/MedicationStatement?patient={patient_id}",
        f"/fhir/MedicationRequest?patient={patient_id}",
        f"/fhir/MedicationAdministration?patient={patient_id}",
        "/fhir/" + observation_template.replace("{{context.patientId}}", patient_id),
    ]


def run_queries(stub_base: str, paths: list[str], n: int) -> tuple[str, Stats]:
    """Time each query ``n`` times alone; return the one with the highest median."""
    parts = urlsplit(stub_base)
    client = Client(parts.hostname or "127.0.0.1", parts.port or 80)
    worst: tuple[str, Stats] | None = None
    try:
        for path in paths:
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                status, _ = client.get(path, accept="application/fhir+json")
                samples.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    raise RuntimeError(f"stub answered {status} to {path}")
            stats = summarize(samples)
            if worst is None or stats.p50_ms > worst[1].p50_ms:
                worst = (path, stats)
    finally:
        client.close()
    assert worst is not None
    return worst


def run_hook(service: Client, stub_base: str, n: int, warmup: int) -> Stats:
    body = orjson.dumps(hook_body(REFERENCE, prefetch=False, fhir_server=stub_base))
    measure(service, body, warmup)
    return summarize(measure(service, body, n, max_seconds=60))
