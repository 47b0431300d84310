"""FHIR URLs and references by parsed, normalised path segments, never by string prefix.

The bearer token the EHR hands us may only go to its ``fhirServer``: a URL is "on that server"
when scheme, host and port match and its path segments begin with the base's segments. Dot
segments (``.``, ``..``, also percent-encoded) are refused outright rather than resolved: a
server or a request that needs them is not one we follow. So ``/fhir/ok`` followed by two
``..`` segments and ``/jwks``, and ``/fhir/okEVIL``, are both off the base ``/fhir/ok``.

Ids follow the FHIR R4 ``id`` rule (``[A-Za-z0-9\\-.]{1,64}``) and may not be ``.`` or ``..``,
which the rule allows but which a URL would resolve to the parent path.

References (``Patient/<id>``, ``https://ehr/fhir/Patient/<id>``) are compared as a relative
``Type/id`` or as an absolute URL under the ``fhirServer`` base; any other absolute URL is
another server's resource, whatever its last segments say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["FhirBase", "is_dot_segment", "local_reference", "valid_id"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_dot_segment(segment: str) -> bool:
    """``.`` or ``..``, as written or percent-encoded (``%2e``, ``%2E%2e``...)."""
    return unquote(segment) in (".", "..")


def valid_id(value: object) -> bool:
    """A FHIR id that is also safe as one URL path segment."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None and value not in (".", "..")


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int | None]:
    scheme = scheme.lower()
    return scheme, (host or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)


def _path_segments(path: str) -> list[str] | None:
    """Non-empty path segments, or None when the path is not one we accept: dot segments, or a
    slash or backslash, written or percent-encoded, that a server could split on after us."""
    if "\\" in path:
        return None
    segments = [s for s in path.split("/") if s]
    for segment in segments:
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            return None
    return segments


@dataclass(frozen=True, slots=True)
class FhirBase:
    """A ``fhirServer`` base URL, parsed once."""

    url: str
    origin: tuple[str, str, int | None]
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, url: str) -> FhirBase | None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        segments = _path_segments(parts.path)
        if (
            parts.scheme.lower() not in _DEFAULT_PORTS
            or not parts.hostname
            or segments is None
            or parts.username
            or parts.password
        ):
            return None
        return cls(url.rstrip("/"), _origin(parts.scheme, parts.hostname, port), tuple(segments))

    def relative_segments(self, url: str) -> list[str] | None:
        """The path segments of ``url`` below this base, or None if ``url`` is not under it."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if parts.username or parts.password or _origin(parts.scheme, parts.hostname, port) != self.origin:
            return None
        segments = _path_segments(parts.path)
        if segments is None or tuple(segments[: len(self.segments)]) != self.segments:
            return None
        return segments[len(self.segments) :]

    def contains(self, url: str) -> bool:
        return self.relative_segments(url) is not None

    def join(self, relative: str) -> str | None:
        """``base/relative`` for ``Type/id`` or ``Type?query`` (no dot segments, no scheme); else None."""
        if relative.startswith("//"):
            return None  # a network-path reference: another host
        path, sep, query = relative.lstrip("/").partition("?")
        segments = _path_segments(path)
        if not path or segments is None or ":" in path or "//" in path:
            return None
        url = f"{self.url}/{path}" + (f"{sep}{query}" if sep else "")
        return url if self.contains(url) else None


def local_reference(reference: str, resource_type: str, base: FhirBase | None) -> str | None:
    """The id a reference points to when it is ``<resource_type>/<id>`` on this server, else None.

    Relative ``Type/id`` (optionally ``/_history/<version>``) always counts; an absolute URL
    counts only under ``base``; anything else (another server, a ``urn:``, a contained ``#id``) not.
    """
    if "://" in reference:
        segments = base.relative_segments(reference) if base is not None else None
        if segments is None:
            return None
    else:
        if reference.startswith("#") or ":" in reference.split("/", 1)[0]:
            return None
        segments = reference.split("/")
    if len(segments) == 4 and segments[2] == "_history" and segments[3]:
        segments = segments[:2]
    if len(segments) != 2 or segments[0] != resource_type or not _TYPE.fullmatch(segments[0]):
        return None
    return segments[1] if valid_id(segments[1]) else None
