"""CDS Hooks 2.0 HTTP endpoints: discovery, service calls, feedback.

https://cds-hooks.hl7.org/2.0/ - views parse, dispatch and serialise; the
work happens in ``service.engine`` (hook) and ``service.feedback``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from service import engine, feedback, metrics, registry
from service.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from service.jsonio import json_response

__all__ = ["bp", "read_json_body"]

bp = Blueprint("cds", __name__)


def read_json_body() -> bytes:
    """The request body's bytes: 415 if it is not declared JSON, 400 if empty.

    The handlers decode it straight into their typed structs (``service.jsonbody.decode_body``:
    syntax, UTF-8, depth and shape in one place), so it is never parsed twice."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("The request body must be JSON (Content-Type: application/json).")
    raw = _body_bytes()  # MAX_CONTENT_LENGTH -> 413, chunked bodies included
    if not raw:
        raise BadRequest("The request body is empty.")
    return raw


_CHUNK = 64 * 1024


def _body_bytes() -> bytes:
    """The body under MAX_CONTENT_LENGTH: 413 when over it, declared or not.

    With ``Content-Length``, werkzeug refuses an oversized body before reading it. A chunked body
    has no length: werkzeug would stop reading at the limit and hand over the first part as if it
    were all, so it is read here, and one byte past the limit is a 413, never a silently cut body.
    """
    if request.content_length is not None:
        return request.get_data(cache=False)  # werkzeug enforces MAX_CONTENT_LENGTH -> 413
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    stream = request.environ.get("wsgi.input")
    if stream is None or not request.environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: the WSGI spec says there is no body to read
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = stream.read(min(_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("The request body is too large.")
        chunks.append(chunk)


def _service_or_404(service_id: str) -> registry.ServiceSpec:
    spec = registry.get(service_id)
    if spec is None:
        raise NotFound(f"No CDS service with id '{service_id[:64]}'.")
    return spec


@bp.get("/cds-services")
def discovery() -> Response:
    """CDS Hooks discovery: every registered service."""
    return json_response(registry.discovery_document())


@bp.post("/cds-services/<service_id>")
def call_service(service_id: str) -> Response:
    """Run a CDS service for one hook call."""
    spec = _service_or_404(service_id)
    with metrics.HOOK_LATENCY.labels(spec.id).time():
        body = read_json_body()
        return json_response(engine.run_hook(spec, body))


@bp.post("/cds-services/<service_id>/feedback")
def service_feedback(service_id: str) -> Response:
    """CDS Hooks 2.0 feedback on cards this service returned."""
    spec = _service_or_404(service_id)
    body = read_json_body()
    return json_response(feedback.receive(spec, body, max_depth=current_app.config["MAX_JSON_DEPTH"]))
