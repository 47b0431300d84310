"""Small HTTP helpers the FHIR client and the JWKS fetcher share.

``is_loopback`` decides where plain ``http://`` may be used (tests, local
sandboxes); ``read_capped`` reads a streamed body under a size cap and a
deadline, because a read time-out only bounds each socket read: a server
dripping a few bytes at a time would otherwise hold a worker thread long past
any budget. ``ByteBudget`` caps what several reads together may bring in (all FHIR reads of one
hook call), counted chunk by chunk as the bytes arrive, before they are kept.
"""

from __future__ import annotations

import ipaddress
import threading
import time

import requests

__all__ = ["BodyTooLarge", "BodyTooSlow", "BudgetExhausted", "ByteBudget", "is_loopback", "read_capped"]

_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than the cap."""


class BudgetExhausted(BodyTooLarge):
    """The body would take its ``ByteBudget`` (shared with other reads) past its limit."""


class BodyTooSlow(Exception):
    """The deadline passed before the body was read."""


class ByteBudget:
    """Bytes several reads may bring in together; thread-safe. ``used`` never exceeds ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Reserve ``size`` bytes; False (and nothing reserved) if that would pass the limit."""
        with self._lock:
            if self.used + size > self.limit:
                return False
            self.used += size
            return True

    def remaining(self) -> int:
        with self._lock:
            return self.limit - self.used


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


def read_capped(
    response: requests.Response, *, max_bytes: int, deadline: float, budget: ByteBudget | None = None
) -> bytes:
    """Read a ``stream=True`` response's (decoded) body; at most ``max_bytes``, done by ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value. With a ``budget``, every chunk is also taken from
    it before it is kept. Raises :class:`BodyTooLarge` (:class:`BudgetExhausted` for the budget) or
    :class:`BodyTooSlow`; transport errors (urllib3's, ``OSError``) pass through, since
    reading the raw body bypasses requests' wrapping of them.
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit():
        if int(declared) > max_bytes:
            raise BodyTooLarge
        if budget is not None and int(declared) > budget.remaining():
            raise BudgetExhausted
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
        if budget is not None and not budget.take(len(chunk)):
            raise BudgetExhausted
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise BodyTooSlow
