"""Per-issuer feedback budget (issue 19, finding 7): a token bucket of feedback *items* per minute.

One bucket per CDS client issuer (the JWT ``iss``; one shared bucket when authentication is off), refilled
continuously up to ``FEEDBACK_ITEMS_PER_MINUTE``; a request that needs more items than are left is refused
whole with 429 and ``Retry-After`` (seconds until it would fit), before anything is stored.

Written by hand because the cost is the number of *items*, known only once the body is validated, and the
buckets live in the process: flask-limiter counts requests at the route and would need its own store. With
several workers or instances the budget is per process, so the effective limit is at most workers x the
setting; it bounds what one client can make a process store, which is the risk finding 7 names.
The issuers are the configured trusted ones, so the table of buckets is bounded.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

__all__ = ["ItemBudget"]


class ItemBudget:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("FEEDBACK_ITEMS_PER_MINUTE must be at least 1")
        self.capacity = float(per_minute)
        self._rate = per_minute / 60.0  # items per second
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # issuer -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, issuer: str, items: int) -> int | None:
        """Spend ``items`` from ``issuer``'s bucket; None when they fit, else seconds to wait (nothing spent)."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(issuer, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self._rate)
            if items <= tokens:
                self._buckets[issuer] = (tokens - items, now)
                return None
            self._buckets[issuer] = (tokens, now)
        if items > self.capacity:
            return 60  # never fits in one go: the caller must send smaller requests; say so by the message
        return max(1, math.ceil((items - tokens) / self._rate))
