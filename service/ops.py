"""Operations endpoints: liveness, readiness and the OpenAPI document."""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response, current_app

from service import registry
from service.jsonio import json_response
from service.storage import StorageUnavailable, get_storage

__all__ = ["bp"]

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: knowledge and terminology loaded, a service registered, storage writable."""
    checks: dict[str, str] = {}
    checks["engine"] = "ok" if "myositis_engine" in current_app.extensions else "not loaded"
    checks["services"] = "ok" if registry.all_services() else "none registered"
    try:
        get_storage().ping()
        checks["database"] = "ok"
    except StorageUnavailable:
        checks["database"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    engine = current_app.extensions.get("myositis_engine")
    version = engine.knowledge.meta.version if engine is not None else None
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks, "knowledge_version": version},
        200 if ready else 503,
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    """The service's OpenAPI 3 document (also drives schema-based fuzzing)."""
    text = resources.files("service").joinpath("openapi.json").read_bytes()
    return Response(text, mimetype="application/json")
