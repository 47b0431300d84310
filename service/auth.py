"""Trusting CDS clients: verify the CDS Hooks 2.0 client JWT on every CDS call.

CDS Hooks 2.0 §"Trusting CDS Clients" (spec-checklist §8, items 56–68): the
CDS client sends ``Authorization: Bearer <jwt>`` on discovery, hook and
feedback calls. The JWT is signed with the client's private key (never
``none``, never HMAC), carries ``kid`` (and optionally ``jku``) in its header
and ``iss``, ``aud``, ``exp``, ``iat``, ``jti`` (and optionally ``tenant``) in
its payload. We verify it with PyJWT against a key from the issuer's JWK Set.

Validation order (best practice, checklist item 67): header shape → ``iss``
trusted → key (allow-listed ``jku`` or configured JWKS) → signature with an
allow-listed asymmetric algorithm whose key type matches → ``aud`` is the URL
called → ``exp``/``iat``/``nbf`` with leeway → lifetime cap → ``tenant`` →
``jti`` never seen before (SQLite, shared by all worker processes).

Every failure raises :class:`service.errors.AuthError` with a precise reason
for the log; the client only ever sees a generic 401. Reasons name a claim or
header field, never its value, and the token is never logged or stored.

Configuration (``app.config``; read at request time with defaults so this
module does not depend on when the config module runs):

``AUTH_ENABLED``        verify JWTs on ``/cds-services…`` (default True)
``TRUSTED_ISSUERS``     ``{iss: {jwks_url?, jku_allowlist?, jwks?, tenants?}}``,
                        or a JSON string / path to a JSON or YAML file
``PUBLIC_BASE_URL``     public URL of the app root (behind a proxy); ``aud``
                        is built from it, else from the request URL
``JWT_LEEWAY_S``        clock skew tolerated on exp/iat/nbf (default 60)
``JWT_MAX_LIFETIME_S``  maximum ``exp - iat`` (default 300)
``JWT_ALGORITHMS``      accepted ``alg`` values (default ES384, RS384, ES256,
                        RS256, ES512, RS512, PS384); ``none``/HS* dropped
``JWKS_CACHE_TTL_S``    how long a fetched JWK Set is trusted (default 3600)
``JWKS_MIN_REFRESH_S``  minimum seconds between two fetches of one JWKS URL
                        (default 10) — bounds refreshes an attacker can force
``DATABASE``            SQLite file holding the ``jwt_jti`` replay table
                        (default ``<instance_path>/myositis-cds.sqlite3``)
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import requests
from flask import Flask, g, request

from service.errors import AuthError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "JwksCache",
    "ReplayStore",
    "TrustedIssuersError",
    "expected_audiences",
    "init_app",
    "load_trusted_issuers",
    "validate_trusted_issuers",
    "verify_request",
    "verify_token",
]

log = logging.getLogger("myositis_cds.auth")

DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES384", "RS384", "ES256", "RS256", "ES512", "RS512", "PS384")

# The only algorithms we will ever verify with, and the key each one needs.
# Binding alg → (kty, crv) is the alg-confusion guard: a token cannot make us
# treat an RSA public key as an HMAC secret, or verify ES384 with a P-256 key.
# ``none`` and HS* are absent on purpose (CDS Hooks 2.0 L1018–L1020): they are
# rejected even if an operator lists them in JWT_ALGORITHMS.
_ALG_KEY: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
}

CDS_PREFIX = "/cds-services"
_FEEDBACK_PATH = re.compile(r"^(/cds-services/[^/]+)/feedback/?$")

MAX_AUTH_HEADER_BYTES = 8 * 1024  # a CDS client JWT is well under 2 KiB
MAX_JWKS_BYTES = 256 * 1024
JWKS_DEADLINE_S = 10.0  # whole fetch, so a slow-drip server cannot hold us past the read timeout
MAX_JTI_CHARS = 512
JWKS_TIMEOUT_S = (3.05, 5.0)  # (connect, read): a slow key host must not hold a worker
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ISSUER_KEYS = frozenset({"jwks_url", "jku_allowlist", "jwks", "tenants"})
_EXT_KEY = "myositis_cds.auth"


# --------------------------------------------------------------------------
# Trusted-issuer configuration
# --------------------------------------------------------------------------


class TrustedIssuersError(ValueError):
    """The trusted-issuer configuration is malformed; the message says where."""


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: Any, where: str) -> str:
    # JWK Sets decide who may sign; fetching them over plain HTTP would let a
    # network attacker swap keys. http:// is allowed only on loopback (tests,
    # local sandboxes).
    if not isinstance(value, str) or not value:
        raise TrustedIssuersError(f"{where}: must be a non-empty URL string")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return value
    raise TrustedIssuersError(f"{where}: must be an https:// URL (http:// only on localhost), got {value!r}")


def _check_jwks(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise TrustedIssuersError(f'{where}: must be a JWK Set object {{"keys": [...]}} with at least one key')
    for i, key in enumerate(value["keys"]):
        kw = f"{where}.keys[{i}]"
        if not isinstance(key, dict):
            raise TrustedIssuersError(f"{kw}: must be a JWK object")
        if key.get("kty") not in ("EC", "RSA"):
            raise TrustedIssuersError(f"{kw}.kty: must be EC or RSA (symmetric keys are not allowed)")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise TrustedIssuersError(f"{kw}.kid: required (CDS Hooks: kid selects the key)")
        private = sorted(_PRIVATE_JWK_MEMBERS & key.keys())
        if private:
            raise TrustedIssuersError(f"{kw}: contains private key members {private}; configure the public key only")
    return value


def _check_str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TrustedIssuersError(f"{where}: must be a list of non-empty strings")
    return list(value)


def validate_trusted_issuers(obj: Any) -> dict[str, dict[str, Any]]:
    """Check the shape of a trusted-issuer mapping; return a normalised copy.

    Shape: ``{issuer: {"jwks_url": url?, "jku_allowlist": [url]?,
    "jwks": {"keys": [...]}?, "tenants": [str]?}}``. Each issuer needs at
    least one key source. Unknown fields are errors (a typo such as
    ``jku_allow_list`` would otherwise silently disable a key source).
    """
    if not isinstance(obj, dict):
        raise TrustedIssuersError("trusted issuers: must be an object mapping issuer → settings")
    out: dict[str, dict[str, Any]] = {}
    for iss, entry in obj.items():
        where = f"trusted issuers[{iss!r}]"
        if not isinstance(iss, str) or not iss:
            raise TrustedIssuersError(f"{where}: issuer must be a non-empty string")
        if not isinstance(entry, dict):
            raise TrustedIssuersError(f"{where}: must be an object")
        unknown = sorted(set(entry) - _ISSUER_KEYS)
        if unknown:
            raise TrustedIssuersError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(_ISSUER_KEYS)}")
        norm: dict[str, Any] = {}
        if entry.get("jwks_url") is not None:
            norm["jwks_url"] = _check_url(entry["jwks_url"], f"{where}.jwks_url")
        if entry.get("jku_allowlist") is not None:
            urls = _check_str_list(entry["jku_allowlist"], f"{where}.jku_allowlist")
            norm["jku_allowlist"] = [_check_url(u, f"{where}.jku_allowlist[{i}]") for i, u in enumerate(urls)]
        if entry.get("jwks") is not None:
            norm["jwks"] = _check_jwks(entry["jwks"], f"{where}.jwks")
        if entry.get("tenants") is not None:
            norm["tenants"] = _check_str_list(entry["tenants"], f"{where}.tenants")
        if not (norm.get("jwks_url") or norm.get("jku_allowlist") or norm.get("jwks")):
            raise TrustedIssuersError(f"{where}: needs at least one of jwks_url, jku_allowlist, jwks")
        out[iss] = norm
    return out


def load_trusted_issuers(source: str) -> dict[str, dict[str, Any]]:
    """Read trusted issuers from a JSON string, or a ``.json``/``.yaml``/``.yml`` file path.

    A source whose first non-blank character is ``{`` is parsed as JSON text;
    anything else is a file path. Raises :class:`TrustedIssuersError` with the
    source and the offending field.
    """
    text = source.strip()
    if not text:
        raise TrustedIssuersError("trusted issuers: empty source")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrustedIssuersError(f"trusted issuers (JSON string): invalid JSON: {exc}") from None
        return validate_trusted_issuers(data)
    path = Path(text)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustedIssuersError(f"trusted issuers file {path}: cannot read: {exc.strerror or exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only needed for YAML files

        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise TrustedIssuersError(f"trusted issuers file {path}: invalid YAML: {exc}") from None
    else:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TrustedIssuersError(f"trusted issuers file {path}: invalid JSON: {exc}") from None
    try:
        return validate_trusted_issuers(data)
    except TrustedIssuersError as exc:
        raise TrustedIssuersError(f"{path}: {exc}") from None


# --------------------------------------------------------------------------
# JWK Set cache
# --------------------------------------------------------------------------


class _JwksFetchError(Exception):
    """The JWK Set could not be fetched or parsed (reason in the message, no secrets)."""


@dataclass
class _JwksEntry:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float | None = None  # monotonic time of the last attempt, success or not


def _keys_by_kid(jwks: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise _JwksFetchError("not a JWK Set (no 'keys' array)")
    out: dict[str, dict[str, Any]] = {}
    for key in jwks["keys"]:
        # Keys we cannot use are skipped, not fatal: one odd key must not take
        # the whole client offline.
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            continue
        if key.get("use", "sig") != "sig" or _PRIVATE_JWK_MEMBERS & key.keys():
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
                    entry.keys = _keys_by_kid(_fetch_json(url))
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
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
                raise _JwksFetchError("response larger than the JWKS size limit")
            body = bytearray()
            started = time.monotonic()
            for chunk in resp.iter_content(chunk_size=16384):
                body.extend(chunk)
                if len(body) > MAX_JWKS_BYTES:
                    raise _JwksFetchError("response larger than the JWKS size limit")
                if time.monotonic() - started > JWKS_DEADLINE_S:
                    raise _JwksFetchError("response too slow")
    except requests.RequestException as exc:
        raise _JwksFetchError(type(exc).__name__) from None
    try:
        return json.loads(bytes(body))
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise _JwksFetchError("response is not JSON") from None


# --------------------------------------------------------------------------
# jti replay store (SQLite, shared across worker processes)
# --------------------------------------------------------------------------


class ReplayStore:
    """Remembers each (issuer, jti) until the token expires.

    SQLite in WAL mode so every gunicorn worker process sees the same set: a
    token replayed to another worker is still caught. The insert is a single
    atomic upsert, so two workers racing on the same jti cannot both win.
    The stored key is a SHA-256 of issuer and jti — fixed size, and jti is
    scoped per issuer as RFC 7519 §4.1.7 intends.
    """

    _PRUNE_EVERY_S = 60.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS jwt_jti (jti TEXT PRIMARY KEY, expires_at INTEGER)")
            conn.execute("CREATE INDEX IF NOT EXISTS jwt_jti_expires_at ON jwt_jti (expires_at)")

    def _connect(self) -> _ClosingConnection:
        # A connection per call: sqlite3 connections must not cross threads,
        # and a fresh connection is cheap next to a signature check.
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        return _ClosingConnection(conn)

    def claim(self, issuer: str, jti: str, expires_at: int) -> bool:
        """Record the jti; True if it was new (or its earlier use has expired), False on replay."""
        key = hashlib.sha256(f"{issuer}\n{jti}".encode()).hexdigest()
        now = int(time.time())
        with self._connect() as conn:
            cur = conn.execute(
                "INSERT INTO jwt_jti (jti, expires_at) VALUES (?, ?) "
                "ON CONFLICT(jti) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE jwt_jti.expires_at < ?",
                (key, expires_at, now),
            )
            fresh = cur.rowcount == 1
        self._maybe_prune(now)
        return fresh

    def _maybe_prune(self, now: int) -> None:
        if not self._prune_lock.acquire(blocking=False):
            return
        try:
            if time.monotonic() - self._last_prune < self._PRUNE_EVERY_S:
                return
            self._last_prune = time.monotonic()
            with self._connect() as conn:
                conn.execute("DELETE FROM jwt_jti WHERE expires_at < ?", (now,))
        finally:
            self._prune_lock.release()


class _ClosingConnection:
    """``with`` closes the connection (sqlite3's own context manager only commits)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def __enter__(self) -> _ClosingConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()


# --------------------------------------------------------------------------
# Per-app state and settings
# --------------------------------------------------------------------------


class _AuthState:
    def __init__(self) -> None:
        self.warned_no_base_url = False
        self.jwks = JwksCache()
        self._stores: dict[str, ReplayStore] = {}
        self._issuers_src: str | None = None
        self._issuers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def replay_store(self, path: str) -> ReplayStore:
        with self._lock:
            store = self._stores.get(path)
            if store is None:
                store = self._stores[path] = ReplayStore(path)
            return store

    def issuers(self, configured: Any) -> dict[str, dict[str, Any]]:
        """TRUSTED_ISSUERS as a validated dict; a string (path or JSON) is loaded once."""
        if isinstance(configured, str):
            with self._lock:
                if configured != self._issuers_src:
                    self._issuers = load_trusted_issuers(configured)
                    self._issuers_src = configured
                return self._issuers
        if configured is None:
            return {}
        return validate_trusted_issuers(configured)


def _state(app: Flask) -> _AuthState:
    return app.extensions[_EXT_KEY]  # type: ignore[no-any-return]


def _allowed_algorithms(configured: Any) -> list[str]:
    if configured is None:
        names = list(DEFAULT_ALGORITHMS)
    elif isinstance(configured, str):
        names = [p.strip() for p in configured.split(",") if p.strip()]
    else:
        names = [str(p) for p in configured]
    # Intersect with the asymmetric table: none/HS* can never get through.
    return [n for n in names if n in _ALG_KEY]


def _database_path(app: Flask) -> str:
    path = app.config.get("DATABASE")
    if not path:
        path = os.path.join(app.instance_path, "myositis-cds.sqlite3")
    return str(path)


# --------------------------------------------------------------------------
# Audience
# --------------------------------------------------------------------------


def _normalise_url(url: str) -> str:
    """Compare URLs the way an HTTP server would: case-insensitive scheme and
    host, default port dropped, trailing slash and query ignored."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, "", ""))


def expected_audiences(app: Flask) -> set[str]:
    """The URL(s) a token for this request must be addressed to (normalised)."""
    base = app.config.get("PUBLIC_BASE_URL")
    if base:
        root = str(base).rstrip("/")
    else:
        # request.root_url includes the script root (app mounted under a prefix).
        # It trusts the Host header: a token minted for another service could
        # then be replayed here with a matching Host. Production sets
        # PUBLIC_BASE_URL; say so once.
        root = request.root_url.rstrip("/")
        state = _state(app)
        if not state.warned_no_base_url:
            state.warned_no_base_url = True
            log.warning("PUBLIC_BASE_URL not set: JWT aud is checked against the request's Host header")
    path = request.path
    urls = {root + path}
    m = _FEEDBACK_PATH.match(path)
    if m:
        # Spec is silent on feedback; the HL7 sandbox signs aud = {serviceUrl}/feedback
        # (checklist item 61). We also accept the service URL itself, leniently.
        urls.add(root + m.group(1))
    return {_normalise_url(u) for u in urls}


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


def _bearer_token() -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise AuthError("missing Authorization header")
    if len(header) > MAX_AUTH_HEADER_BYTES:
        raise AuthError("Authorization header too large")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":  # auth-scheme is case-insensitive (RFC 7235 §2.1)
        raise AuthError("Authorization scheme is not Bearer")
    token = token.strip()
    if not token or " " in token:
        raise AuthError("malformed Bearer token")
    return token


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _select_key(app: Flask, issuer_cfg: Mapping[str, Any], header: Mapping[str, Any], kid: str) -> dict[str, Any]:
    """Find the JWK for ``kid`` among the issuer's trusted key sources.

    Sources, in order: the inline ``jwks`` (no network); the header's ``jku``
    if that exact URL is allow-listed for this issuer; the configured
    ``jwks_url``. A
    ``jku`` that is not allow-listed is never fetched (SSRF and key injection:
    the token would otherwise choose the key that verifies it) — we fall back
    to the configured sources, which will not hold an attacker's key.
    """
    ttl = float(app.config.get("JWKS_CACHE_TTL_S", 3600))
    min_refresh = float(app.config.get("JWKS_MIN_REFRESH_S", 10))
    cache = _state(app).jwks
    urls: list[str] = []
    jku = header.get("jku")
    if jku is not None:
        if isinstance(jku, str) and jku in issuer_cfg.get("jku_allowlist", []):
            urls.append(jku)
        else:
            log.warning("jku not on the issuer's allow-list; not fetched")
    inline = issuer_cfg.get("jwks")
    if inline:
        key = _keys_by_kid(inline).get(kid)
        if key is not None:
            return key
    if issuer_cfg.get("jwks_url"):
        urls.append(issuer_cfg["jwks_url"])
    if not urls and not inline:
        raise AuthError("no usable key source for issuer (jku not allow-listed and no jwks/jwks_url configured)")
    for url in urls:
        key = cache.get_key(url, kid, ttl_s=ttl, min_refresh_s=min_refresh)
        if key is not None:
            return key
    raise AuthError("no key with the token's kid in the issuer's JWK Set (or JWK Set unavailable)")


def _check_key_matches_alg(jwk_dict: Mapping[str, Any], alg: str) -> None:
    kty, crv = _ALG_KEY[alg]
    if jwk_dict.get("kty") != kty:
        raise AuthError("key type does not match header alg")
    if crv is not None and jwk_dict.get("crv") != crv:
        raise AuthError("key curve does not match header alg")
    if "alg" in jwk_dict and jwk_dict["alg"] != alg:
        raise AuthError("JWK alg does not match header alg")


def verify_token(app: Flask, token: str) -> dict[str, Any]:
    """Verify a CDS client JWT for the current request; return its claims or raise AuthError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("token is not a well-formed JWS") from None

    # --- header -----------------------------------------------------------
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.upper() not in ("JWT", "APPLICATION/JWT"):
        raise AuthError("header typ is missing or not JWT")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in _ALG_KEY:
        # none, HS*, unknown — rejected before any key is looked up.
        raise AuthError("header alg is not an accepted asymmetric algorithm")
    algorithms = _allowed_algorithms(app.config.get("JWT_ALGORITHMS"))
    if alg not in algorithms:
        raise AuthError("header alg is not in JWT_ALGORITHMS")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise AuthError("header kid is missing")

    # --- issuer (unverified, only to pick the key; re-checked after the signature)
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise AuthError("token payload is not a JSON object") from None
    iss = unverified.get("iss")
    if not isinstance(iss, str) or not iss:
        raise AuthError("claim iss is missing")
    try:
        issuers = _state(app).issuers(app.config.get("TRUSTED_ISSUERS"))
    except TrustedIssuersError as exc:
        raise AuthError(f"TRUSTED_ISSUERS is invalid: {exc}") from None
    issuer_cfg = issuers.get(iss)
    if issuer_cfg is None:
        raise AuthError("claim iss is not a trusted issuer")

    # --- key and signature --------------------------------------------------
    jwk_dict = _select_key(app, issuer_cfg, header, kid)
    _check_key_matches_alg(jwk_dict, alg)
    try:
        # Binding the PyJWK to the header alg we already vetted makes PyJWT
        # verify with exactly that algorithm and that key type.
        key = jwt.PyJWK(dict(jwk_dict), algorithm=alg)
    except jwt.PyJWTError:
        raise AuthError("configured JWK is unusable for header alg") from None

    leeway = float(app.config.get("JWT_LEEWAY_S", 60))
    audiences = expected_audiences(app)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            issuer=iss,
            leeway=leeway,
            options={
                "require": ["iss", "aud", "exp", "iat", "jti"],
                "verify_aud": False,  # checked below with URL normalisation
                "enforce_minimum_key_length": True,  # e.g. RSA < 2048 bits is an error, not a warning
            },
        )
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"claim {exc.claim} is missing") from None
    except jwt.ExpiredSignatureError:
        raise AuthError("claim exp is in the past (token expired)") from None
    except jwt.ImmatureSignatureError as exc:
        which = "nbf" if "nbf" in str(exc) else "iat"
        raise AuthError(f"claim {which} is in the future beyond the allowed clock skew") from None
    except jwt.InvalidIssuedAtError:
        raise AuthError("claim iat is not a number") from None
    except jwt.InvalidIssuerError:
        raise AuthError("claim iss does not match") from None
    except jwt.exceptions.InvalidJTIError:
        raise AuthError("claim jti is not a string") from None
    except jwt.exceptions.InvalidSubjectError:
        raise AuthError("claim sub is not a string") from None
    except jwt.InvalidSignatureError:
        raise AuthError("signature verification failed") from None
    except jwt.InvalidAlgorithmError:
        raise AuthError("header alg rejected by verifier") from None
    except jwt.InvalidKeyError:
        raise AuthError("key rejected by verifier (type or size)") from None
    except jwt.PyJWTError as exc:
        # DecodeError for non-integer exp/nbf, malformed segments, bad crit, ...
        raise AuthError(f"token rejected: {type(exc).__name__}") from None

    # --- claims PyJWT does not check the way CDS Hooks needs ----------------
    for name in ("exp", "iat"):
        if not _is_number(claims[name]):
            raise AuthError(f"claim {name} is not a number")
    if "nbf" in claims and not _is_number(claims["nbf"]):
        raise AuthError("claim nbf is not a number")

    aud = claims["aud"]
    aud_list = [aud] if isinstance(aud, str) else aud
    if not isinstance(aud_list, list) or not aud_list or not all(isinstance(a, str) for a in aud_list):
        raise AuthError("claim aud is not a string or array of strings")
    if not any(_normalise_url(a) in audiences for a in aud_list):
        raise AuthError("claim aud does not match the URL called")

    max_lifetime = float(app.config.get("JWT_MAX_LIFETIME_S", 300))
    if claims["exp"] - claims["iat"] > max_lifetime:
        raise AuthError("claims exp - iat exceed JWT_MAX_LIFETIME_S")

    tenants = issuer_cfg.get("tenants")
    if tenants:
        if claims.get("tenant") not in tenants:
            raise AuthError("claim tenant is missing or not configured for this issuer")

    jti = claims["jti"]
    if not jti or len(jti) > MAX_JTI_CHARS:
        raise AuthError("claim jti is empty or too long")
    # Keep the jti as long as the token could still be accepted (exp + leeway).
    expires_at = int(claims["exp"] + leeway) + 1
    try:
        fresh = _state(app).replay_store(_database_path(app)).claim(iss, jti, expires_at)
    except (sqlite3.Error, OSError) as exc:
        # Fail closed: without the replay store we cannot tell a replay apart.
        raise AuthError(f"replay store unavailable: {type(exc).__name__}") from None
    if not fresh:
        raise AuthError("claim jti was already used (replay)")
    return claims


def _needs_auth(path: str, method: str) -> bool:
    # Preflight carries no credentials by design (CORS), so it cannot be
    # authenticated; it reveals nothing. Everything under /cds-services is
    # discovery, hook or feedback and needs a token.
    if method == "OPTIONS":
        return False
    return path == CDS_PREFIX or path.startswith(CDS_PREFIX + "/")


def verify_request(app: Flask) -> None:
    """before_request body: verify the JWT when auth is on and the path is a CDS endpoint."""
    if not app.config.get("AUTH_ENABLED", True):
        return
    if not _needs_auth(request.path, request.method):
        return
    token = _bearer_token()
    g.jwt_claims = verify_token(app, token)


def init_app(app: Flask) -> None:
    """Install JWT verification on ``app`` (a ``before_request`` hook)."""
    app.extensions[_EXT_KEY] = _AuthState()
    if app.config.get("AUTH_ENABLED", True) and not app.config.get("TRUSTED_ISSUERS"):
        # Fail closed, but say why every call will be refused: an operator's first question.
        log.warning("authentication is on but no trusted issuers are configured: every CDS call will get 401 "
                    "(set MYOSITIS_CDS_TRUSTED_ISSUERS, see docs/security.md)")
    configured = app.config.get("JWT_ALGORITHMS")
    if configured is not None:
        names = configured.split(",") if isinstance(configured, str) else list(configured)
        dropped = sorted({str(n).strip() for n in names} - set(_ALG_KEY))
        if dropped:
            log.warning("JWT_ALGORITHMS entries ignored (symmetric, none or unknown): %s", ", ".join(dropped))

    @app.before_request
    def _verify_cds_client_jwt() -> None:
        verify_request(app)
