"""CORS for browser-based CDS clients (CDS Hooks 2.0 §CORS, OWASP guidance).

Only configured origins are echoed back; ``*`` is honoured only when
configured explicitly, and never together with credentials.
"""

from __future__ import annotations

from flask import Flask, Response, request

__all__ = ["init_app"]

_METHODS = "GET, POST, OPTIONS"
_HEADERS = "Authorization, Content-Type, X-Request-ID"


def init_app(app: Flask) -> None:
    origins = frozenset(app.config.get("CORS_ORIGINS") or ())

    @app.after_request
    def _cors(response: Response) -> Response:
        if not request.path.startswith("/cds-services"):
            return response
        origin = request.headers.get("Origin")
        if not origin:
            return response
        response.headers.add("Vary", "Origin")
        if origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
        elif "*" in origins:
            response.headers["Access-Control-Allow-Origin"] = "*"
        else:
            return response
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = _METHODS
            response.headers["Access-Control-Allow-Headers"] = _HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
        return response
