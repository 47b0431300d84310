"""CDS Hooks 2.0 HTTP endpoints: discovery, service calls, feedback.

https://cds-hooks.hl7.org/2.0/ - views parse, dispatch and serialise; the
work happens in ``service.engine`` (hook) and ``service.feedback``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from service import engine, feedback, registry
from service.errors import BadRequest, NotFound, UnsupportedMediaType
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
    raw: bytes = request.get_data(cache=False)  # werkzeug enforces MAX_CONTENT_LENGTH -> 413
    if not raw:
        raise BadRequest("The request body is empty.")
    return raw


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
    body = read_json_body()
    return json_response(engine.run_hook(spec, body))


@bp.post("/cds-services/<service_id>/feedback")
def service_feedback(service_id: str) -> Response:
    """CDS Hooks 2.0 feedback on cards this service returned."""
    spec = _service_or_404(service_id)
    body = read_json_body()
    return json_response(feedback.receive(spec, body, max_depth=current_app.config["MAX_JSON_DEPTH"]))
