"""Test helpers for service.auth: real keys, JWK Sets, tokens and a minimal app.

Keys are generated once per test session (RSA generation is slow) with
``cryptography``; tokens are signed with PyJWT exactly as a CDS client would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask, g, jsonify

from service import auth, storage
from service.errors import register_error_handlers

ISS = "https://ehr.example.org"
JWKS_URL = "https://ehr.example.org/.well-known/jwks.json"
JKU = "https://ehr.example.org/jku/keys.json"
BASE = "http://localhost"
SERVICE_URL = f"{BASE}/cds-services/x"
FEEDBACK_URL = f"{SERVICE_URL}/feedback"
DISCOVERY_URL = f"{BASE}/cds-services"

DROP = object()  # sentinel: leave this claim / header field out


@dataclass(frozen=True)
class Key:
    kid: str
    alg: str
    private: Any

    @property
    def jwk(self) -> dict[str, Any]:
        """Public JWK as a client would publish it in its JWK Set."""
        public = self.private.public_key()
        algo = jwt.algorithms.ECAlgorithm if self.alg.startswith("ES") else jwt.algorithms.RSAAlgorithm
        data = algo.to_jwk(public, as_dict=True)
        data.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return data

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@cache
def ec_p384(kid: str = "ec-1") -> Key:
    return Key(kid, "ES384", ec.generate_private_key(ec.SECP384R1()))


@cache
def ec_p256(kid: str = "ec256-1") -> Key:
    return Key(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


@cache
def rsa_2048(kid: str = "rsa-1") -> Key:
    return Key(kid, "RS384", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def jwks(*keys: Key) -> dict[str, Any]:
    return {"keys": [k.jwk for k in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISS,
        "aud": SERVICE_URL,
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not DROP}


def token(key: Key, *, alg: str | None = None, headers: dict[str, Any] | None = None, **claim_overrides: Any) -> str:
    """A JWT signed with ``key`` (header kid = key.kid, typ JWT) unless overridden."""
    hdr: dict[str, Any] = {"typ": "JWT", "kid": key.kid}
    hdr.update(headers or {})
    # PyJWT always writes typ and leaves it out only when given a falsy value.
    hdr = {k: (None if v is DROP and k == "typ" else v) for k, v in hdr.items() if v is not DROP or k == "typ"}
    return jwt.encode(claims(**claim_overrides), key.private, algorithm=alg or key.alg, headers=hdr)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(header: dict[str, Any], payload: dict[str, Any], *, hmac_key: bytes | None = None) -> str:
    """Hand-built JWS, as an attacker would make it (alg none, HS256 with a public key ...)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    sig = b""
    if hmac_key is not None:
        sig = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def issuer_config(**entry: Any) -> dict[str, dict[str, Any]]:
    return {ISS: entry}


def make_app(tmp_path: Path, *, instance_path: str | None = None, **config: Any) -> Flask:
    """Minimal Flask app with the real error handlers, storage (the replay store) and auth hook, and dummy CDS routes."""
    app = Flask(__name__, instance_path=instance_path)
    app.config.update(
        TESTING=True,
        AUTH_ENABLED=True,
        DATABASE=str(tmp_path / "cds.sqlite3"),
        TRUSTED_ISSUERS=issuer_config(jwks=jwks(ec_p384(), rsa_2048())),
    )
    app.config.update(config)
    register_error_handlers(app)
    storage.init_app(app)
    auth.init_app(app)

    def ok() -> Any:
        return jsonify({"ok": True, "claims": g.get("jwt_claims")})

    app.add_url_rule("/cds-services", "discovery", ok, methods=["GET"])
    app.add_url_rule("/cds-services/x", "service", ok, methods=["POST"])
    app.add_url_rule("/cds-services/x/feedback", "feedback", ok, methods=["POST"])
    app.add_url_rule("/healthz", "healthz", ok, methods=["GET"])
    return app


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}
