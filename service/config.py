"""Settings: defaults, then environment, then the caller's overrides.

This is the only module that reads ``os.environ``. Every setting has a
``MYOSITIS_CDS_<NAME>`` environment variable; README documents them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULTS", "from_environ", "parse_bool"]

DEFAULTS: dict[str, Any] = {
    # Trusting CDS clients (CDS Hooks 2.0 §Security): on unless explicitly turned off.
    "AUTH_ENABLED": True,
    "TRUSTED_ISSUERS": {},
    "PUBLIC_BASE_URL": None,  # e.g. https://cds.example.org (no trailing slash); used for JWT aud and links
    "JWT_LEEWAY_S": 60,
    "JWT_MAX_LIFETIME_S": 300,
    "JWT_ALGORITHMS": ["ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS384"],
    "JWKS_CACHE_TTL_S": 3600,
    # Storage: feedback, issued cards, JWT replay store, suppression state, RxNav cache (service/storage/).
    "DATABASE": None,  # SQLite file, the embedded default: <instance_path>/myositis-cds.sqlite3
    "DATABASE_URL": None,  # postgresql://... : PostgreSQL instead, shared by every instance
    "DATABASE_POOL_SIZE": 8,  # PostgreSQL connections per process
    "DATABASE_TIMEOUT_S": 5.0,  # longest wait for a PostgreSQL connection before a storage error
    # Suppression (service/suppression.py, issue 16)
    "PATIENT_KEY_SECRET": None,  # HMAC key for patient keys; default: generated once into the instance folder
    "SUPPRESS_DAYS": 30,  # a card overridden is hidden this long, unless what drove it changes
    "REMIND_LATER_DAYS": 7,  # ... or this long when the reason was remind-later
    "REPEAT_SUPPRESS_DAYS": 90,  # ... or this long when the same unchanged card is overridden again
    "FEEDBACK_WINDOW_DAYS": 90,  # feedback is taken for cards issued within this many days
    "FEEDBACK_ITEMS_PER_MINUTE": 2000,  # per issuer and process (service/ratelimit.py); beyond it: 429
    "DEMOTE_AFTER_SHOWS": 3,  # shown this often unanswered: warning becomes info
    "SUPPRESS_AFTER_SHOWS": 6,  # shown this often unanswered: hidden until what drove it changes
    # Metrics (service/metrics.py): served by the gunicorn master on their own port when set
    "METRICS_PORT": None,
    "METRICS_HOST": "127.0.0.1",
    # FHIR fallback
    "FHIR_CONNECT_TIMEOUT_S": 2.0,
    "FHIR_READ_TIMEOUT_S": 4.0,
    "FHIR_DEADLINE_S": 8.0,  # whole gather, all queries and pages
    "FHIR_MAX_PAGES": 10,
    "FHIR_MAX_WORKERS": 8,  # parallel FHIR reads of one hook call, on threads of its own (a bulkhead per call)
    "FHIR_MAX_PAGE_BYTES": 8 * 1024 * 1024,  # one FHIR answer, counted while it streams in
    "FHIR_MAX_CALL_BYTES": 16 * 1024 * 1024,  # every FHIR answer of one hook call together
    "FHIR_MAX_MEDICATION_READS": 50,
    "ALLOW_INSECURE_LOCAL_FHIR": False,  # allow http:// fhirServer on loopback hosts only (sandboxes)
    "HTTP_FHIR_HOSTS": [],  # named hosts also allowed over http, e.g. "hapi" on a docker-compose network
    "FHIR_VALIDATION": "fields",  # fields | strict (full fhir.resources R4B validation per resource)
    # Request limits
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    "MAX_JSON_DEPTH": 64,
    "MAX_RESOURCES": 20000,
    # Browser clients (CDS Hooks 2.0 §CORS)
    "CORS_ORIGINS": ["https://sandbox.cds-hooks.org"],
    # Terminology
    "RXNAV_ENABLED": False,
    "RXNAV_BASE_URL": "https://rxnav.nlm.nih.gov/REST",
    "RXNAV_CACHE_PATH": None,
    "RXNAV_TIMEOUT_S": 2.0,
    # Knowledge and clock
    "KNOWLEDGE_DIR": None,
    "TODAY": None,  # ISO date to pin "today" (demo, tests); None = the real date
    # Card preview page
    "PREVIEW_ENABLED": False,
    "PREVIEW_FHIR_ENABLED": False,  # the page's "FHIR server" form (the service fetches from a URL typed in)
    # Request headers: one field longer than this is answered 431 (JSON), like gunicorn and nginx do
    "MAX_HEADER_FIELD_BYTES": 16 * 1024,
    # gunicorn workers: how long a thread may hold the GIL while another waits (Python's default: 5 ms).
    # A request thread that waits on I/O (socket, database) must win the GIL back on each return; next to
    # a CPU-bound call (a 7 MiB prefetch) each return costs up to this long (bench/hostile.py).
    "GIL_SWITCH_INTERVAL_MS": 0.5,
    # gunicorn workers: the cyclic garbage collector's first threshold (Python's default: 700). A call frees
    # nearly all it builds by reference counting; at 700 a heavy record triggered ~3 collections per call
    # (bench/RESULTS.md hot spots). The knowledge and terminology loaded at start are frozen out of them.
    "GC_GEN0_THRESHOLD": 10_000,
    # Logging
    "LOG_LEVEL": "INFO",
    "LOG_TRACEBACKS": False,
}

_BOOL = {
    "AUTH_ENABLED",
    "ALLOW_INSECURE_LOCAL_FHIR",
    "RXNAV_ENABLED",
    "PREVIEW_ENABLED",
    "PREVIEW_FHIR_ENABLED",
    "LOG_TRACEBACKS",
}
_INT = {
    "DATABASE_POOL_SIZE",
    "SUPPRESS_DAYS",
    "REMIND_LATER_DAYS",
    "REPEAT_SUPPRESS_DAYS",
    "FEEDBACK_WINDOW_DAYS",
    "FEEDBACK_ITEMS_PER_MINUTE",
    "DEMOTE_AFTER_SHOWS",
    "SUPPRESS_AFTER_SHOWS",
    "METRICS_PORT",
    "JWT_LEEWAY_S",
    "JWT_MAX_LIFETIME_S",
    "JWKS_CACHE_TTL_S",
    "FHIR_MAX_PAGES",
    "FHIR_MAX_WORKERS",
    "FHIR_MAX_MEDICATION_READS",
    "FHIR_MAX_PAGE_BYTES",
    "FHIR_MAX_CALL_BYTES",
    "MAX_CONTENT_LENGTH",
    "MAX_JSON_DEPTH",
    "MAX_RESOURCES",
    "MAX_HEADER_FIELD_BYTES",
    "GC_GEN0_THRESHOLD",
}
_FLOAT = {
    "GIL_SWITCH_INTERVAL_MS",
    "DATABASE_TIMEOUT_S",
    "FHIR_CONNECT_TIMEOUT_S",
    "FHIR_READ_TIMEOUT_S",
    "FHIR_DEADLINE_S",
    "RXNAV_TIMEOUT_S",
}
_LIST = {"JWT_ALGORITHMS", "CORS_ORIGINS", "HTTP_FHIR_HOSTS"}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings given as ``MYOSITIS_CDS_*`` environment variables, typed.

    ``TRUSTED_ISSUERS`` is returned as the raw string (a file path or JSON);
    the auth module parses it.
    """
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for key in DEFAULTS:
        raw = env.get(f"MYOSITIS_CDS_{key}")
        if raw is None:
            continue
        try:
            if key in _BOOL:
                out[key] = parse_bool(raw)
            elif key in _INT:
                out[key] = int(raw)
            elif key in _FLOAT:
                out[key] = float(raw)
            elif key in _LIST:
                out[key] = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                out[key] = raw
        except ValueError as exc:
            raise ValueError(f"MYOSITIS_CDS_{key}: {exc}") from None
    return out
