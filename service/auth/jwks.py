"""JWK Sets: fetched from configured URLs only, cached per URL with a TTL and a refresh rate limit."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from service.auth.issuers import PRIVATE_JWK_MEMBERS
from service.httpio import BodyTooLarge, BodyTooSlow, read_capped

__all__ = ["JWKS_DEADLINE_S", "JWKS_TIMEOUT_S", "MAX_JWKS_BYTES", "JwksCache", "keys_by_kid"]

log = logging.getLogger("myositis_cds.auth")

MAX_JWKS_BYTES = 256 * 1024
JWKS_DEADLINE_S = 10.0  # whole fetch, so a slow-drip server cannot hold us past the read timeout
JWKS_TIMEOUT_S = (3.05, 5.0)  # (connect, read): a slow key host must not hold a worker


class _JwksFetchError(Exception):
    """The JWK Set could not be fetched or parsed (reason in the message, no secrets)."""


@dataclass
class _JwksEntry:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float | None = None  # monotonic time of the last attempt, success or not


def keys_by_kid(jwks: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise _JwksFetchError("not a JWK Set (no 'keys' array)")
    out: dict[str, dict[str, Any]] = {}
    for key in jwks["keys"]:
        # Keys we cannot use are skipped, not fatal: one odd key must not take
        # the whole client offline.
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            continue
        if key.get("use", "sig") != "sig" or PRIVATE_JWK_MEMBERS & key.keys():
            continue
        out.setdefault(key["kid"], key)  # kid MUST be unique; first one wins
    return out


class JwksCache:
    """Per-URL cache of JWK Sets with TTL and rate-limited refresh.

    A URL is fetched when it is not cached, when its keys are older than the
    TTL, or when a token names a ``kid`` it lacks (key rotation) — but never
    more often than once per ``min_refresh_s``, so a stream of tokens with
    random ``kid`` values cannot turn us into a load generator against the
    client's key host. Failed fetches count as attempts too. When a refresh
    fails, the previous keys remain usable for at most one more TTL.

    Only configured URLs (``jwks_url`` or allow-listed ``jku``) reach here.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _JwksEntry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts only
        self.fetch_count = 0  # for tests and metrics

    def get_key(self, url: str, kid: str, *, ttl_s: float, min_refresh_s: float) -> dict[str, Any] | None:
        with self._lock:
            url_lock = self._locks.setdefault(url, threading.Lock())
            entry = self._entries.setdefault(url, _JwksEntry())
        # One lock per URL: concurrent requests wait for a single fetch instead
        # of each fetching (thundering herd after a rotation), while a slow key
        # host stalls only its own issuer's requests.
        with url_lock:
            now = time.monotonic()
            fresh = entry.fetched_at is not None and now - entry.fetched_at < ttl_s
            need = not fresh or kid not in entry.keys
            may_fetch = entry.attempted_at is None or now - entry.attempted_at >= min_refresh_s
            if need and may_fetch:
                entry.attempted_at = now
                self.fetch_count += 1
                try:
                    entry.keys = keys_by_kid(_fetch_json(url))
                    entry.fetched_at = now
                except _JwksFetchError as exc:
                    # The URL is configuration, not a secret; it goes in the message
                    # because the JSON log formatter passes only allow-listed extras.
                    log.warning("JWKS fetch failed: %s", url, extra={"reason": str(exc)})
            usable = entry.fetched_at is not None and now - entry.fetched_at <= 2 * ttl_s
            return entry.keys.get(kid) if usable else None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._locks.clear()


def _fetch_json(url: str) -> Any:
    started = time.monotonic()
    try:
        # No redirects: following one would let an allow-listed host send us
        # to a URL nobody allow-listed.
        with requests.get(
            url,
            timeout=JWKS_TIMEOUT_S,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/jwk-set+json, application/json"},
        ) as resp:
            if resp.status_code != 200:
                raise _JwksFetchError(f"HTTP {resp.status_code}")
            body = read_capped(resp, max_bytes=MAX_JWKS_BYTES, deadline=started + JWKS_DEADLINE_S)
    except BodyTooLarge:
        raise _JwksFetchError("response larger than the JWKS size limit") from None
    except BodyTooSlow:
        raise _JwksFetchError("response too slow") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        # urllib3's errors and OSError come from the raw body read, which requests does not wrap.
        raise _JwksFetchError(type(exc).__name__) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise _JwksFetchError("response is not JSON") from None
