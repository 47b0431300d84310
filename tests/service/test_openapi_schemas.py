"""The OpenAPI request schemas are the decoding structs' own (``service/openapi.py``), and the
document the service serves is the one generated from them."""

from __future__ import annotations

import copy
import json

from service.openapi import DOCUMENT, REQUEST_BODIES, regenerate, request_schemas


def test_the_served_request_schemas_are_generated_from_the_structs(client) -> None:
    served = client.get("/openapi.json").get_json()
    generated = request_schemas()
    assert {name: served["components"]["schemas"].get(name) for name in generated} == generated
    for path, names in REQUEST_BODIES.items():
        schema = served["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        refs = [{"$ref": f"#/components/schemas/{name}"} for name in names]
        assert schema == (refs[0] if len(refs) == 1 else {"oneOf": refs})


def test_the_committed_document_is_current() -> None:
    """Run ``python -m service.openapi`` after changing a request struct."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert regenerate(copy.deepcopy(document)) == document


def test_every_reference_in_the_document_resolves() -> None:
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    refs = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("$ref"), str):
                refs.add(value["$ref"])
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(document)
    for ref in refs:
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref
