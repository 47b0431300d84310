"""The request schemas of ``service/openapi.json``, generated from the structs that decode them.

``HookRequestBody`` (``service.hook_request``) and ``FeedbackRequest`` (``service.feedback``) are
what the service decodes requests into; their JSON Schema (``msgspec.json.schema_components``)
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
# operation path -> the component its request body is
REQUEST_BODIES = {
    "/cds-services/{service_id}": "HookRequestBody",
    "/cds-services/{service_id}/feedback": "FeedbackRequest",
}


def request_schemas() -> dict[str, Any]:
    """Components for the hook and feedback request bodies and every struct they contain."""
    from service.feedback import FeedbackRequest
    from service.hook_request import HookRequestBody

    _, components = msgspec.json.schema_components(
        [HookRequestBody, FeedbackRequest], ref_template="#/components/schemas/{name}"
    )
    return components


def regenerate(document: dict[str, Any]) -> dict[str, Any]:
    document["openapi"] = "3.1.0"
    schemas = document["components"]["schemas"]
    schemas.pop("HookRequest", None)
    schemas.update(request_schemas())
    for path, name in REQUEST_BODIES.items():
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = {"$ref": f"#/components/schemas/{name}"}
    return document


def main() -> None:
    document = regenerate(json.loads(DOCUMENT.read_text(encoding="utf-8")))
    DOCUMENT.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
