"""Prometheus metrics for a fleet (prometheus_client; multiprocess mode under gunicorn).

What is counted: hook latency per service; cards issued per kind and indicator, and suppressed per
kind; feedback per outcome and override reason; FHIR fallback reads and failures per resource type;
JWT refusals per reason; storage errors per store and back-end.

Labels never carry patient data, tokens or client free text: kinds, indicators and resource types
are the service's own vocabulary; an override reason is one of our codes (``cards/knowledge/meta.yaml``)
or ``other``; a JWT refusal reason is the fixed text of our own check, cut at its first ``:``.

Where they are served: on their own port (``METRICS_PORT``, bound to ``METRICS_HOST``, default
127.0.0.1), by the gunicorn master (``service/gunicorn_conf.py``), never on the CDS port. Why not
behind the CDS client JWT: a Prometheus server cannot mint the EHR's short-lived, single-use
tokens, and a scrape must not burn jtis or fill the replay store; a separate port that the load
balancer does not publish keeps operational data off the surface EHRs reach. Multiprocess mode
needs ``PROMETHEUS_MULTIPROC_DIR`` set before this module is first imported in the master;
``service/gunicorn_conf.py`` does that.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

__all__ = [
    "HOOK_LATENCY",
    "CARDS_ISSUED",
    "CARDS_SUPPRESSED",
    "FEEDBACK",
    "FHIR_FALLBACK_CALLS",
    "FHIR_FALLBACK_FAILURES",
    "JWT_REFUSALS",
    "STORE_ERRORS",
    "exposition_registry",
    "feedback",
    "fhir_fallback",
    "jwt_refused",
    "render",
    "serve",
    "store_error",
]

HOOK_LATENCY = Histogram(
    "myositis_cds_hook_duration_seconds",
    "Hook calls, request in to answer out (seconds)",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CARDS_ISSUED = Counter("myositis_cds_cards_issued", "Cards answered to the EHR", ["kind", "indicator"])
CARDS_SUPPRESSED = Counter("myositis_cds_cards_suppressed", "Cards built but not shown (issue 16)", ["kind"])
FEEDBACK = Counter("myositis_cds_feedback", "Feedback items newly stored", ["outcome", "reason"])
FHIR_FALLBACK_CALLS = Counter("myositis_cds_fhir_fallback_calls", "FHIR queries the service ran itself", ["kind"])
FHIR_FALLBACK_FAILURES = Counter("myositis_cds_fhir_fallback_failures", "FHIR queries that failed", ["kind"])
JWT_REFUSALS = Counter("myositis_cds_jwt_refusals", "CDS client JWTs refused", ["reason"])
STORE_ERRORS = Counter("myositis_cds_store_errors", "Storage calls that failed", ["store", "backend"])

_REASON_CHARS = 80


def feedback(outcome: str, reason: str | None, own_codes: Iterable[str]) -> None:
    """Count one stored feedback item; a client's own reason code becomes ``other`` (it is free text to us)."""
    label = "none" if reason is None else (reason if reason in own_codes else "other")
    FEEDBACK.labels(outcome, label).inc()


def fhir_fallback(origins: Iterable[tuple[str, str]]) -> None:
    """(resource type, where its data came from) per prefetch template: ``fhir`` read by us, ``missing`` failed."""
    for kind, origin in origins:
        if origin in ("fhir", "missing"):
            FHIR_FALLBACK_CALLS.labels(kind).inc()
            if origin == "missing":
                FHIR_FALLBACK_FAILURES.labels(kind).inc()


def jwt_refused(reason: str) -> None:
    # Our reasons name a check, then sometimes ": <error type or detail>"; only the check is a label.
    JWT_REFUSALS.labels(reason.split(":", 1)[0][:_REASON_CHARS]).inc()


def store_error(store: str, backend: str) -> None:
    STORE_ERRORS.labels(store, backend).inc()


def exposition_registry() -> CollectorRegistry:
    """Every process's values under gunicorn (multiprocess files), else this process's registry."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        return registry
    return REGISTRY


def render() -> bytes:
    return generate_latest(exposition_registry())


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on its own port from this process (a thread), for the gunicorn master or ``--dev``."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=exposition_registry())
