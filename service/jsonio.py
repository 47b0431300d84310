"""JSON in and out, fast (orjson) and strict, in one place."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

__all__ = ["dumps", "loads", "json_response", "JSONDecodeError"]

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``JSONDecodeError`` on invalid JSON or invalid UTF-8."""
    return orjson.loads(data)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")
