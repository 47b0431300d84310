"""Small HTTP helpers the FHIR client and the JWKS fetcher share.

``is_loopback`` decides where plain ``http://`` may be used (tests, local
sandboxes); ``read_capped`` reads a streamed body under a size cap and a
deadline, because a read time-out only bounds each socket read: a server
dripping a few bytes at a time would otherwise hold a worker thread long past
any budget.
"""

from __future__ import annotations

import ipaddress
import time

import requests

__all__ = ["BodyTooLarge", "BodyTooSlow", "is_loopback", "read_capped"]

_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than the cap."""


class BodyTooSlow(Exception):
    """The deadline passed before the body was read."""


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and any loopback IP address (``127.0.0.0/8``, ``::1``; brackets allowed)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_capped(response: requests.Response, *, max_bytes: int, deadline: float) -> bytes:
    """Read a ``stream=True`` response's (decoded) body; at most ``max_bytes``, done by ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value. Raises :class:`BodyTooLarge` or
    :class:`BodyTooSlow`; transport errors (urllib3's, ``OSError``) pass through, since
    reading the raw body bypasses requests' wrapping of them.
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    raw = response.raw
    while True:
        # read1: whatever has arrived (up to 64 KiB), so the deadline is checked between drips.
        chunk = raw.read1(_CHUNK, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise BodyTooSlow
