"""Errors a client can see, and the one place they become HTTP answers.

Every error leaves the service as the same JSON shape::

    {"error": "<stable-code>", "message": "<safe, human-readable text>"}

with the HTTP status of its class. Messages never carry patient data,
tokens or stack traces.

    CdsError                          base
    +- BadRequest              400    malformed JSON, invalid hook request or feedback
    +- AuthError               401    missing or invalid CDS client JWT
    +- NotFound                404    unknown CDS service or route
    +- MethodNotAllowed        405
    +- PayloadTooLarge         413    body over MAX_CONTENT_LENGTH, declared or (chunked) as it streams in
    +- HeaderTooLarge          431    one request header field over MAX_HEADER_FIELD_BYTES
    +- UnsupportedMediaType    415    body is not JSON
    +- DataUnavailable         412    CDS Hooks: required FHIR data could not be had
    +- UpstreamError           502    reserved: the FHIR server failed in a way we cannot degrade around
    (storage.StorageUnavailable) 503  the database could not store or read (``storage-unavailable``,
                                      with Retry-After): nothing in that request was acknowledged
"""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from service import metrics
from service.jsonio import json_response
from service.storage.base import StorageUnavailable

__all__ = [
    "CdsError",
    "BadRequest",
    "AuthError",
    "NotFound",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "HeaderTooLarge",
    "UnsupportedMediaType",
    "DataUnavailable",
    "UpstreamError",
    "register_error_handlers",
    "register_request_limits",
    "error_body",
]

log = logging.getLogger("myositis_cds.errors")


class CdsError(Exception):
    """Base class: an error with an HTTP status and a message safe to show."""

    status = 500
    code = "internal-error"

    def __init__(self, message: str, *, code: str | None = None, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or []

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(CdsError):
    status = 400
    code = "invalid-request"


class AuthError(CdsError):
    """Raised when the CDS client's JWT is missing or fails verification.

    The message sent to the client is deliberately generic; the precise
    reason goes to the log only (``reason``).
    """

    status = 401
    code = "unauthorized"

    def __init__(self, reason: str) -> None:
        super().__init__("The request could not be authenticated.")
        self.reason = reason


class NotFound(CdsError):
    status = 404
    code = "not-found"


class MethodNotAllowed(CdsError):
    status = 405
    code = "method-not-allowed"


class PayloadTooLarge(CdsError):
    status = 413
    code = "payload-too-large"


class HeaderTooLarge(CdsError):
    status = 431
    code = "request-header-too-large"


class UnsupportedMediaType(CdsError):
    status = 415
    code = "unsupported-media-type"


class TooManyRequests(CdsError):
    """429: this client's feedback budget is spent for now; ``retry_after`` seconds until it fits."""

    status = 429
    code = "too-many-requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DataUnavailable(CdsError):
    """CDS Hooks 2.0: 412 when required FHIR data is neither prefetched nor fetchable."""

    status = 412
    code = "fhir-data-unavailable"


class UpstreamError(CdsError):
    status = 502
    code = "upstream-error"


_HTTP_CODES = {
    400: ("invalid-request", "The request is not valid."),
    404: ("not-found", "No such resource on this CDS service."),
    405: ("method-not-allowed", "This method is not allowed on this URL."),
    413: ("payload-too-large", "The request body is too large."),
    415: ("unsupported-media-type", "The request body must be JSON (application/json)."),
    431: ("request-header-too-large", "A request header field is too large."),
}


def error_body(status: int, fallback: str = "HTTP error") -> bytes:
    """The JSON error body for ``status``: also used by the WSGI server's own errors (gunicorn_app)."""
    from service.jsonio import dumps

    code, message = _HTTP_CODES.get(status, ("http-error", fallback))
    return dumps({"error": code, "message": message})


def _error_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    resp = json_response(body, status)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def register_error_handlers(app: Flask) -> None:
    """Turn every exception into the JSON error shape; nothing else reaches the client."""

    @app.errorhandler(CdsError)
    def _cds_error(exc: CdsError) -> Response:
        if isinstance(exc, AuthError):
            log.warning("auth rejected", extra={"reason": exc.reason})
            metrics.jwt_refused(exc.reason)
            return _error_response(exc.status, exc.to_json(), {"WWW-Authenticate": 'Bearer realm="cds-services"'})
        if isinstance(exc, TooManyRequests):
            return _error_response(exc.status, exc.to_json(), {"Retry-After": str(exc.retry_after)})
        return _error_response(exc.status, exc.to_json())

    @app.errorhandler(StorageUnavailable)
    def _storage_error(exc: StorageUnavailable) -> Response:
        # The store and error type only: the database's own message may quote a value or a host.
        log.error(
            "storage unavailable", extra={"store": exc.store, "backend": exc.backend, "error_type": exc.error_type}
        )
        return _error_response(
            503,
            {
                "error": "storage-unavailable",
                "message": "The service could not store or read its data; nothing was recorded. Try again shortly.",
            },
            {"Retry-After": "5"},
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code, message = _HTTP_CODES.get(status, ("http-error", exc.name if exc.name else "HTTP error"))
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(sorted(valid_methods))
        return _error_response(status, {"error": code, "message": message}, headers)

    @app.errorhandler(431)
    def _header_too_large(exc: HTTPException) -> Response:
        return _http_error(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The type name is safe to log; the message may quote patient data.
        log.error(
            "unhandled error",
            extra={"error_type": type(exc).__name__},
            exc_info=app.config.get("LOG_TRACEBACKS", False),
        )
        return _error_response(
            500, {"error": "internal-error", "message": "The service failed to process the request."}
        )


def register_request_limits(app: Flask) -> None:
    """Limits checked before anything else (authentication included) reads the request."""
    from flask import request

    @app.before_request
    def _header_fields() -> None:
        limit = int(app.config["MAX_HEADER_FIELD_BYTES"])
        for name, value in request.headers.items():
            if len(name) + len(value) > limit:
                raise HeaderTooLarge("A request header field is too large.")
