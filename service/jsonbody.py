"""A request body decoded straight into typed structs (msgspec), with the size and depth guarantees.

One pass does the JSON syntax, the UTF-8 of every string it decodes and the shape of the fields
the service reads; unknown fields are skipped unread. What msgspec does not promise is kept here:

* UTF-8 of *skipped* text - msgspec checks only the strings it decodes, so the body is checked
  once as a whole (``bytes.isascii`` first, the common case, at memory speed);
* nesting depth - msgspec has no depth setting: it stops only at the interpreter's recursion
  limit (~1000, ``RecursionError``), far beyond ``MAX_JSON_DEPTH`` (64). The byte-level check
  below keeps the documented limit; a ``RecursionError`` is answered the same way.

The size limit stays with werkzeug (``MAX_CONTENT_LENGTH`` -> 413) before any of this runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from service.errors import BadRequest

__all__ = ["decode_body", "json_depth_exceeds", "validation_problem", "valid_utf8", "ShapeError", "END"]

# The end of a pattern in the request structs: Python's ``$`` also matches before a final newline,
# ``\Z`` is Python-only; ``$(?!\n)`` means "the end" in Python and in the OpenAPI document's
# ECMA-262 regular expressions alike.
END = r"$(?!\n)"

T = TypeVar("T")

_NOT_JSON = "The request body is not valid JSON (or not valid UTF-8)."
_TOO_DEEP = "The request body is nested too deeply."

# Depth is measured on the raw bytes, where C-speed byte operations replace a Python walk over
# every parsed node (the walk was the largest single cost of a big prefetch body).
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")  # depth does not care which kind of bracket
_NOT_KEPT = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when containers in ``raw`` nest deeper than ``limit``; ``raw`` must be valid JSON.

    Escapes go first (backslash pairs, then escaped quotes: escapes read left to right), so the
    quotes left delimit strings, whose text is dropped, leaving only brackets. Each pass then
    removes the innermost pairs, so the passes needed to empty the text are the nesting depth.

    Most strings hold no bracket and are ``""`` once only quotes and brackets are kept: those go in
    one C pass first. Removing ``""`` never moves a bracket into or out of a string (it is an empty
    string, or one string's end and the next one's start with nothing between them), and it leaves
    few quotes to split on: half the time of splitting at every quote of a large prefetch.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    text = raw.translate(_BRACKETS_ONLY, _NOT_KEPT).replace(b'""', b"")
    brackets = b"".join(text.split(b'"')[::2]) if b'"' in text else text  # outside strings: every other piece
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def valid_utf8(raw: bytes) -> bool:
    if raw.isascii():
        return True
    try:
        raw.decode("utf-8")  # strict: also refuses encoded surrogates and overlong forms
    except UnicodeDecodeError:
        return False
    return True


def validation_problem(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(path, what is wrong) from a msgspec error: ``("context.patientId", "Expected `str`, got `int`")``.

    The path names fields of our structs; the text says which type or pattern was expected.
    Neither carries the value sent, except msgspec's "Invalid enum value" (not used in request structs).
    """
    text = str(exc)
    what, sep, where = text.rpartition(" - at `$")
    if not sep:
        what, where = text, "`"
    path = where.rstrip("`").lstrip(".")
    if what.startswith("Object missing required field `"):
        name = what[len("Object missing required field `") :].rstrip("`")
        path, what = (f"{path}.{name}" if path else name), "is required"
    return path, what


def decode_body(raw: bytes, decoder: msgspec.json.Decoder[T], *, max_depth: int, not_object: str) -> T:
    """Decode ``raw`` with ``decoder``; ``BadRequest`` for bad JSON or too deep, ``ShapeError`` for a wrong field."""
    if not valid_utf8(raw):
        raise BadRequest(_NOT_JSON)
    try:
        value: T = _json_or_400(decoder.decode, raw, max_depth)
    except msgspec.ValidationError as exc:
        # The typed decode stops at the first wrong field: the rest may not even be JSON.
        _json_or_400(msgspec.json.decode, raw, max_depth)
        path, what = validation_problem(exc)
        if not path:
            raise BadRequest(not_object) from None
        raise ShapeError(path, what) from None
    return value


def _json_or_400(decode: Callable[[bytes], Any], raw: bytes, max_depth: int) -> Any:
    """``decode(raw)``, or 400 if it is not JSON or nests deeper than ``max_depth``; a ValidationError passes."""
    try:
        value = decode(raw)
    except msgspec.ValidationError:  # a subclass of DecodeError: the caller words it
        raise
    except msgspec.DecodeError:
        raise BadRequest(_NOT_JSON) from None
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    if json_depth_exceeds(raw, max_depth):
        raise BadRequest(_TOO_DEEP)
    return value


class ShapeError(Exception):
    """The body is JSON but a field has the wrong type: ``path`` and what was expected."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(f"{path}: {what}")
        self.path = path
        self.what = what
