"""Structured JSON logs without PHI.

Only allow-listed ``extra`` fields reach the output, so a careless
``log.info(..., extra={"patient": ...})`` cannot leak: unknown fields are
dropped, and messages are fixed strings chosen by us, never patient text.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

__all__ = ["init_app", "JsonFormatter", "SAFE_FIELDS"]

SAFE_FIELDS = frozenset(
    {
        "request_id",
        "hook_instance",
        "service_id",
        "method",
        "path",
        "status",
        "duration_ms",
        "gather_ms",
        "parse_ms",
        "facts_ms",
        "cards_ms",
        "cards",
        "card_kinds",
        "origin",
        "gaps",
        "reason",
        "count",
        "error_type",
        "pages",
        "resources",
        "skipped",
        "feedback_items",
        "stored",
        "issuer",
        "kid",
        "alg",
        "resource_type",
    }
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in SAFE_FIELDS:
                body[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            body["error_type"] = record.exc_info[0].__name__
        return json.dumps(body, default=str, separators=(",", ":"))


def _configure_root(level: str) -> None:
    # urllib3 logs request lines (with patient ids in query strings) at DEBUG: never let them through.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logger = logging.getLogger("myositis_cds")
    logger.setLevel(level.upper())
    if not any(getattr(h, "_myositis", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._myositis = True  # type: ignore[attr-defined]  # our marker on a stdlib handler, to find it again
        logger.addHandler(handler)
    logger.propagate = True  # lets pytest's caplog see records


_access = logging.getLogger("myositis_cds.access")


# Request ids need uniqueness, not secrecy: a seeded generator spares a system call per request.
_ID_RANDOM = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ID_RANDOM.seed(os.urandom(32)))


def _request_id() -> str:
    given = request.headers.get("X-Request-ID")
    if given:
        try:
            return str(uuid.UUID(given))  # only a well-formed id is echoed: a header is caller-controlled
        except ValueError:
            pass
    return str(uuid.UUID(int=_ID_RANDOM.getrandbits(128), version=4))


def init_app(app: Flask) -> None:
    _configure_root(app.config.get("LOG_LEVEL", "INFO"))

    @app.before_request
    def _start() -> None:
        g.request_id = _request_id()
        g.started = time.perf_counter()
        g.timings = {}

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        started = g.get("started")
        extra: dict[str, Any] = {
            "request_id": g.get("request_id"),
            "method": request.method,
            "path": request.url_rule.rule if request.url_rule else "(unmatched)",
            "status": response.status_code,
        }
        if started is not None:
            extra["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        extra.update(g.get("timings", {}))
        _access.info("request", extra=extra)
        return response
