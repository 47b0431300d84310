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
``jti`` never seen before (``service.storage``: shared by every worker, and by every instance
on PostgreSQL).

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
``DATABASE`` / ``DATABASE_URL``  where the ``jwt_jti`` replay table lives
                        (``service.storage``)

The package, by job:

``issuers``  the trusted-issuer configuration and its checks
``jwks``     fetching and caching issuers' JWK Sets
``verify``   the checks above, in order, and ``init_app``
"""

from __future__ import annotations

from service.auth.issuers import TrustedIssuersError, load_trusted_issuers, validate_trusted_issuers
from service.auth.jwks import JwksCache
from service.auth.verify import DEFAULT_ALGORITHMS, expected_audiences, init_app, verify_request, verify_token

__all__ = [
    "DEFAULT_ALGORITHMS",
    "JwksCache",
    "TrustedIssuersError",
    "expected_audiences",
    "init_app",
    "load_trusted_issuers",
    "validate_trusted_issuers",
    "verify_request",
    "verify_token",
]
