"""Trusted-issuer configuration: which CDS clients may call, and where their keys are.

``TRUSTED_ISSUERS`` maps each issuer (``iss``) to its key sources and tenants.
It is checked field by field when loaded, so a typo fails at start-up with the
field named instead of silently disabling a key source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from service.httpio import is_loopback

__all__ = ["PRIVATE_JWK_MEMBERS", "TrustedIssuersError", "load_trusted_issuers", "validate_trusted_issuers"]

# JWK members that only a private (or symmetric) key has: a configured or fetched key carrying
# one is refused, since it means someone published a secret.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ISSUER_KEYS = frozenset({"jwks_url", "jku_allowlist", "jwks", "tenants"})


class TrustedIssuersError(ValueError):
    """The trusted-issuer configuration is malformed; the message says where."""


def _check_url(value: Any, where: str) -> str:
    # JWK Sets decide who may sign; fetching them over plain HTTP would let a
    # network attacker swap keys. http:// is allowed only on loopback (tests,
    # local sandboxes).
    if not isinstance(value, str) or not value:
        raise TrustedIssuersError(f"{where}: must be a non-empty URL string")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and is_loopback(parts.hostname):
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
        private = sorted(PRIVATE_JWK_MEMBERS & key.keys())
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
