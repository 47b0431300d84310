"""The request schemas of ``service/openapi.json``, generated from the structs that decode them.

The hook request structs (``service.hook_request.REQUEST_BODIES``: one per hook, the service call's
body is one of them) and ``FeedbackRequest`` (``service.feedback``) are what the service decodes requests into; their JSON Schema (``msgspec.json.schema_components``)
is the OpenAPI document's, so the document cannot drift from what is enforced. The document is
OpenAPI 3.1 (JSON Schema 2020-12: optional fields are ``anyOf [..., {"type": "null"}]``).

``python -m service.openapi`` rewrites those components in ``service/openapi.json`` (the served
file stays a static file: nothing is generated per request); a test checks it is current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["request_schemas", "REQUEST_BODIES", "DOCUMENT"]

DOCUMENT = Path(__file__).with_name("openapi.json")
# operation path -> the component(s) its request body is (one of)
REQUEST_BODIES = {
    "/cds-services/{service_id}": ("HookRequestBody", "OrderSelectRequestBody", "OrderSignRequestBody"),
    "/cds-services/{service_id}/feedback": ("FeedbackRequest",),
}


def request_schemas() -> dict[str, Any]:
    """Components for the hook and feedback request bodies and every struct they contain."""
    from service.feedback import FeedbackRequest
    from service.hook_request import REQUEST_BODIES as HOOK_BODIES

    _, components = msgspec.json.schema_components(
        [*HOOK_BODIES.values(), FeedbackRequest], ref_template="#/components/schemas/{name}"
    )
    return components


def _schema(names: tuple[str, ...]) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in names]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}  # exclusive: each hook's struct fixes ``hook``


def regenerate(document: dict[str, Any]) -> dict[str, Any]:
    document["openapi"] = "3.1.0"
    schemas = document["components"]["schemas"]
    schemas.pop("HookRequest", None)
    schemas.update(request_schemas())
    for path, names in REQUEST_BODIES.items():
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = _schema(names)
    return document


def main() -> None:
    document = regenerate(json.loads(DOCUMENT.read_text(encoding="utf-8")))
    DOCUMENT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
