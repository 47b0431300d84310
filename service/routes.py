"""CDS Hooks 2.0 HTTP endpoints: discovery, service calls, feedback.

https://cds-hooks.hl7.org/2.0/ - views parse, dispatch and serialise; the
work happens in ``service.engine`` (hook) and ``service.feedback``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from service import engine, feedback, metrics, registry
from service.errors import BadRequest, NotFound, UnsupportedMediaType
from service.hook_request import json_depth_exceeds
from service.jsonio import JSONDecodeError, json_response, loads

__all__ = ["bp", "read_json_body"]

bp = Blueprint("cds", __name__)


def read_json_body() -> Any:
    """The request body as JSON: 415 if it is not declared JSON, 400 if it is not valid JSON."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType("The request body must be JSON (Content-Type: application/json).")
    raw = request.get_data(cache=False)  # werkzeug enforces MAX_CONTENT_LENGTH -> 413
    if not raw:
        raise BadRequest("The request body is empty.")
    try:
        body = loads(raw)
    except JSONDecodeError:
        raise BadRequest("The request body is not valid JSON (or not valid UTF-8).") from None
    if json_depth_exceeds(raw, current_app.config["MAX_JSON_DEPTH"]):
        raise BadRequest("The request body is nested too deeply.")
    return body


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
    return json_response(feedback.receive(spec, body))
