"""Verify the CDS client's JWT on every CDS call: the checks, in order, and the per-app state.

See the package docstring (``service.auth``) for the order of checks and the settings.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
from flask import Flask, g, request

from service.auth.issuers import TrustedIssuersError, load_trusted_issuers, validate_trusted_issuers
from service.auth.jwks import JwksCache, keys_by_kid
from service.errors import AuthError
from service.storage import StorageUnavailable, get_storage

__all__ = [
    "CDS_PREFIX",
    "DEFAULT_ALGORITHMS",
    "expected_audiences",
    "init_app",
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
MAX_JTI_CHARS = 512
_EXT_KEY = "myositis_cds.auth"


# --------------------------------------------------------------------------
# Per-app state and settings
# --------------------------------------------------------------------------


class _AuthState:
    def __init__(self) -> None:
        self.warned_no_base_url = False
        self.jwks = JwksCache()
        self._issuers_src: str | None = None
        self._issuers: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

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
    state: _AuthState = app.extensions[_EXT_KEY]
    return state


def _allowed_algorithms(configured: Any) -> list[str]:
    if configured is None:
        names = list(DEFAULT_ALGORITHMS)
    elif isinstance(configured, str):
        names = [p.strip() for p in configured.split(",") if p.strip()]
    else:
        names = [str(p) for p in configured]
    # Intersect with the asymmetric table: none/HS* can never get through.
    return [n for n in names if n in _ALG_KEY]


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
        key = keys_by_kid(inline).get(kid)
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
        # Shared by every worker and, with PostgreSQL, every instance: a token replayed anywhere is refused.
        fresh = get_storage(app).replay.claim(iss, jti, expires_at)
    except StorageUnavailable as exc:
        # Fail closed: without the replay store we cannot tell a replay apart.
        raise AuthError(f"replay store unavailable: {exc.error_type}") from None
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
        log.warning(
            "authentication is on but no trusted issuers are configured: every CDS call will get 401 "
            "(set MYOSITIS_CDS_TRUSTED_ISSUERS, see docs/security.md)"
        )
    configured = app.config.get("JWT_ALGORITHMS")
    if configured is not None:
        names = configured.split(",") if isinstance(configured, str) else list(configured)
        dropped = sorted({str(n).strip() for n in names} - set(_ALG_KEY))
        if dropped:
            log.warning("JWT_ALGORITHMS entries ignored (symmetric, none or unknown): %s", ", ".join(dropped))

    @app.before_request
    def _verify_cds_client_jwt() -> None:
        verify_request(app)
