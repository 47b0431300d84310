"""CDS client JWT verification (service.auth): one test per rule.

CDS Hooks 2.0 §"Trusting CDS Clients"; rules and what real clients send are in
docs/sources/cds-hooks/spec-checklist.md §8. Real EC P-384 / RSA-2048
keys, PyJWT-signed tokens, JWKS/jku HTTP mocked with ``responses``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from service import auth, storage
from service.auth import TrustedIssuersError, load_trusted_issuers

try:  # rootdir-relative import (tests/unit has no __init__.py)
    import auth_support as s
except ImportError:  # pragma: no cover - if tests/unit becomes a package
    from tests.unit import auth_support as s


# --------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    # Any request not registered fails with ConnectionError: nothing leaves the box.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def app(tmp_path: Path):
    return s.make_app(tmp_path)


def post(app, tok: str | None, path: str = "/cds-services/x", **kw: Any):
    headers = s.bearer(tok) if tok is not None else {}
    return app.test_client().post(path, json={}, headers=headers, **kw)


def reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.reason for r in caplog.records if hasattr(r, "reason") and r.name == "myositis_cds.errors"]


def assert_rejected(resp, caplog: pytest.LogCaptureFixture, reason_part: str) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body == {"error": "unauthorized", "message": "The request could not be authenticated."}
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    got = reasons(caplog)
    assert got, "no auth reason logged"
    assert reason_part in got[-1], got


def assert_ok(resp) -> dict[str, Any]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["claims"]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


# --------------------------------------------------------------------------
# accepted tokens
# --------------------------------------------------------------------------


def test_valid_es384_via_allowlisted_jku_accepted(tmp_path, rsps):
    """HL7 sandbox style: ES384, jku in the header, jku allow-listed for the issuer."""
    rsps.get(s.JKU, json=s.jwks(s.ec_p384()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jku_allowlist=[s.JKU]))
    tok = s.token(s.ec_p384(), headers={"jku": s.JKU})
    claims = assert_ok(post(app, tok))
    assert claims["iss"] == s.ISS
    assert len(rsps.calls) == 1


def test_valid_rs384_via_configured_jwks_url_accepted(tmp_path, rsps):
    """Epic style: RS384, key set communicated out of band as a JWKS URL."""
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_ok(post(app, s.token(s.rsa_2048())))


def test_valid_token_with_inline_jwks_needs_no_http(app, rsps):
    assert_ok(post(app, s.token(s.ec_p384())))
    assert len(rsps.calls) == 0


def test_jwks_is_cached_between_requests(tmp_path, rsps):
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    for _ in range(3):
        assert_ok(post(app, s.token(s.rsa_2048())))
    assert len(rsps.calls) == 1


def test_discovery_and_feedback_need_and_accept_tokens(app):
    client = app.test_client()
    assert client.get("/cds-services").status_code == 401
    assert client.post("/cds-services/x/feedback", json={}).status_code == 401
    ok = client.get("/cds-services", headers=s.bearer(s.token(s.ec_p384(), aud=s.DISCOVERY_URL)))
    assert ok.status_code == 200
    assert_ok(post(app, s.token(s.ec_p384(), aud=s.FEEDBACK_URL), "/cds-services/x/feedback"))


def test_claims_stored_in_g(app):
    claims = assert_ok(post(app, s.token(s.ec_p384(), tenant="t-1")))
    assert claims["tenant"] == "t-1" and claims["aud"] == s.SERVICE_URL


def test_extra_claims_tolerated_epic_style(app):
    """Epic adds sub (client id) and nbf (iat - 5 min); neither is required, both accepted."""
    now = int(time.time())
    tok = s.token(s.rsa_2048(), sub="epic-client-id", nbf=now - 300, tenant="org-1", custom={"x": 1})
    assert_ok(post(app, tok))


def test_sub_and_nbf_not_required(app):
    assert_ok(post(app, s.token(s.ec_p384(), sub=s.DROP, nbf=s.DROP)))


def test_exact_sandbox_lifetime_300s_accepted(app):
    now = int(time.time())
    assert_ok(post(app, s.token(s.ec_p384(), iat=now, exp=now + 300)))


def test_iat_slightly_in_future_within_skew_accepted(app):
    now = int(time.time())
    assert_ok(post(app, s.token(s.ec_p384(), iat=now + 30, exp=now + 330)))


def test_typ_case_insensitive_and_media_type_form(app):
    assert_ok(post(app, s.token(s.ec_p384(), headers={"typ": "jwt"})))
    assert_ok(post(app, s.token(s.ec_p384(), headers={"typ": "application/jwt"})))


def test_bearer_scheme_case_insensitive(app):
    resp = app.test_client().post(
        "/cds-services/x", json={}, headers={"Authorization": "bearer " + s.token(s.ec_p384())}
    )
    assert_ok(resp)


# --------------------------------------------------------------------------
# Authorization header
# --------------------------------------------------------------------------


def test_missing_authorization_header(app, caplog):
    assert_rejected(post(app, None), caplog, "missing Authorization header")


def test_not_bearer_scheme(app, caplog):
    resp = app.test_client().post("/cds-services/x", json={}, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_rejected(resp, caplog, "not Bearer")


def test_empty_bearer_token(app, caplog):
    resp = app.test_client().post("/cds-services/x", json={}, headers={"Authorization": "Bearer "})
    assert_rejected(resp, caplog, "malformed Bearer token")


def test_garbage_token(app, caplog):
    assert_rejected(post(app, "not.a.jwt"), caplog, "not a well-formed JWS")


def test_oversized_authorization_header(app, caplog):
    assert_rejected(post(app, "a" * 10_000), caplog, "too large")


def test_deeply_nested_token_json_is_401(app, caplog):
    deep = "[" * 3000 + "]" * 3000
    hdr = s.b64url(b'{"alg":"ES384","typ":"JWT","kid":"ec-1"}')
    body = s.b64url(('{"x":' + deep + "}").encode())
    tok = f"{hdr}.{body}.AA"
    assert_rejected(post(app, tok), caplog, "")


def test_deeply_nested_jwks_is_401(tmp_path, rsps, caplog):
    rsps.get(s.JWKS_URL, body="[" * 50_000 + "]" * 50_000)
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_rejected(post(app, s.token(s.rsa_2048())), caplog, "no key with the token's kid")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_header_fields = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ES384", "RS384", "none", "HS256", "ES256", "PS384", ""]) | _json,
        "typ": st.sampled_from(["JWT", "jwt", "JOSE"]) | _json,
        "kid": st.sampled_from(["ec-1", "rsa-1", ""]) | _json,
        "jku": st.sampled_from([s.JKU, "https://attacker.example.net/j"]) | _json,
        "crit": _json,
    },
)
_payload_fields = st.fixed_dictionaries(
    {},
    optional={k: _json for k in ("iss", "aud", "exp", "iat", "nbf", "jti", "tenant", "sub")}
    | {"iss": st.just(s.ISS) | _json, "aud": st.just(s.SERVICE_URL) | _json},
)


def test_fuzzed_authorization_headers_only_401(tmp_path, rsps):
    """Hostile headers and forged tokens never get through and never cause a 500."""
    app = s.make_app(tmp_path)
    client = app.test_client()

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: "Bearer " + s.b64url(b)))
    def raw_headers(value: str) -> None:
        try:
            resp = client.post("/cds-services/x", json={}, headers={"Authorization": value})
        except ValueError:  # werkzeug refuses header values with newlines before we see them
            return
        assert resp.status_code == 401

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(_header_fields, _payload_fields | _json, st.binary(max_size=64))
    def forged(header: Any, payload: Any, sig: bytes) -> None:
        tok = f"{s.b64url(json.dumps(header).encode())}.{s.b64url(json.dumps(payload).encode())}.{s.b64url(sig)}"
        assert client.post("/cds-services/x", json={}, headers=s.bearer(tok)).status_code == 401

    raw_headers()
    forged()
    assert len(rsps.calls) == 0  # nothing fetched: no jwks_url, and attacker jku never


# --------------------------------------------------------------------------
# header: typ, kid, alg
# --------------------------------------------------------------------------


def test_typ_missing_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), headers={"typ": s.DROP})), caplog, "typ")


def test_typ_wrong_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), headers={"typ": "at+jwt"})), caplog, "typ")


def test_kid_missing_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), headers={"kid": s.DROP})), caplog, "kid is missing")


def test_alg_none_rejected(app, caplog):
    tok = s.raw_token({"alg": "none", "typ": "JWT", "kid": s.ec_p384().kid}, s.claims())
    assert_rejected(post(app, tok), caplog, "alg is not an accepted asymmetric algorithm")


def test_alg_none_rejected_even_if_configured(tmp_path, caplog):
    app = s.make_app(tmp_path, JWT_ALGORITHMS=["none", "HS256", "ES384"])
    tok = s.raw_token({"alg": "none", "typ": "JWT", "kid": s.ec_p384().kid}, s.claims())
    assert_rejected(post(app, tok), caplog, "alg is not an accepted asymmetric algorithm")


def test_hs256_with_public_key_as_secret_rejected(tmp_path, caplog):
    """Classic alg confusion: HMAC keyed with the RSA public key the service trusts.

    Rejected even with HS256 listed in JWT_ALGORITHMS.
    """
    app = s.make_app(tmp_path, JWT_ALGORITHMS=["HS256", "RS384"])
    key = s.rsa_2048()
    tok = s.raw_token({"alg": "HS256", "typ": "JWT", "kid": key.kid}, s.claims(), hmac_key=key.public_pem)
    assert_rejected(post(app, tok), caplog, "alg is not an accepted asymmetric algorithm")


def test_rsa_key_with_es_alg_rejected(app, caplog):
    """Header says ES384 but kid points at the RSA key: key type must match alg."""
    tok = s.token(s.ec_p384(), headers={"kid": s.rsa_2048().kid})
    assert_rejected(post(app, tok), caplog, "key type does not match header alg")


def test_ec_key_with_rs_alg_rejected(app, caplog):
    tok = s.token(s.rsa_2048(), headers={"kid": s.ec_p384().kid})
    assert_rejected(post(app, tok), caplog, "key type does not match header alg")


def test_p256_key_with_es384_alg_rejected(tmp_path, caplog):
    # JWK without "alg" so only the curve check stands between us and a mismatch.
    jwk = dict(s.ec_p256().jwk)
    del jwk["alg"]
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks={"keys": [jwk]}))
    tok = s.token(s.ec_p384(), headers={"kid": s.ec_p256().kid})
    assert_rejected(post(app, tok), caplog, "curve does not match")


def test_jwk_alg_must_match_header_alg(app, caplog):
    # The RSA JWK is published with alg RS384; an RS256 token using it is refused.
    tok = s.token(s.rsa_2048(), alg="RS256")
    assert_rejected(post(app, tok), caplog, "JWK alg does not match")


def test_alg_not_in_configured_list_rejected(tmp_path, caplog):
    app = s.make_app(tmp_path, JWT_ALGORITHMS=["RS384"])
    assert_rejected(post(app, s.token(s.ec_p384())), caplog, "not in JWT_ALGORITHMS")


def test_jwt_algorithms_as_comma_string(tmp_path):
    app = s.make_app(tmp_path, JWT_ALGORITHMS="ES384, RS384")
    assert_ok(post(app, s.token(s.ec_p384())))


def test_bad_signature_rejected(app, caplog):
    other = s.Key("ec-1", "ES384", s.ec_p384("other").private)  # same kid, different private key
    assert_rejected(post(app, s.token(other)), caplog, "signature verification failed")


def test_weak_rsa_key_rejected(tmp_path, caplog):
    weak = s.Key("weak", "RS384", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks=s.jwks(weak)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns when *signing* with a short key
        tok = s.token(weak)
    assert_rejected(post(app, tok), caplog, "key rejected by verifier")


# --------------------------------------------------------------------------
# key selection: kid, JWKS refresh, jku allow-list
# --------------------------------------------------------------------------


def test_unknown_kid_one_refresh_then_reject(tmp_path, rsps, caplog):
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_ok(post(app, s.token(s.rsa_2048())))
    assert len(rsps.calls) == 1
    app.config["JWKS_MIN_REFRESH_S"] = 0
    stranger = s.Key("unknown-kid", "RS384", s.rsa_2048().private)
    assert_rejected(post(app, s.token(stranger)), caplog, "no key with the token's kid")
    assert len(rsps.calls) == 2  # exactly one refresh for the unknown kid


def test_unknown_kid_refresh_is_rate_limited(tmp_path, rsps, caplog):
    """A flood of random kids must not make us hammer the client's key host."""
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL), JWKS_MIN_REFRESH_S=60)
    assert_ok(post(app, s.token(s.rsa_2048())))
    for i in range(5):
        stranger = s.Key(f"random-{i}", "RS384", s.rsa_2048().private)
        assert_rejected(post(app, s.token(stranger)), caplog, "no key with the token's kid")
    assert len(rsps.calls) == 1


def test_kid_rotation_picked_up_after_refresh(tmp_path, rsps):
    old, new = s.rsa_2048(), s.rsa_2048("rsa-2")
    rsps.get(s.JWKS_URL, json=s.jwks(old))
    rsps.get(s.JWKS_URL, json=s.jwks(old, new))  # responses serves registrations in order
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL), JWKS_MIN_REFRESH_S=0)
    assert_ok(post(app, s.token(old)))
    assert_ok(post(app, s.token(new)))
    assert len(rsps.calls) == 2


def test_jwks_refetched_after_ttl(tmp_path, rsps):
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    app = s.make_app(
        tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL), JWKS_CACHE_TTL_S=0, JWKS_MIN_REFRESH_S=0
    )
    assert_ok(post(app, s.token(s.rsa_2048())))
    assert_ok(post(app, s.token(s.rsa_2048())))
    assert len(rsps.calls) == 2


def test_jku_not_on_allowlist_never_fetched(tmp_path, rsps, caplog):
    """The token names the attacker's key set; we must not even fetch it."""
    evil = "https://attacker.example.net/jwks.json"
    rsps.get(evil, json=s.jwks(s.ec_p384("attacker")))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jku_allowlist=[s.JKU]))
    tok = s.token(s.ec_p384("attacker"), headers={"jku": evil})
    assert_rejected(post(app, tok), caplog, "no usable key source")
    assert len(rsps.calls) == 0


def test_jku_not_on_allowlist_falls_back_to_configured_keys(tmp_path, rsps, caplog):
    """jku off the list is ignored; the issuer's configured keys still decide."""
    evil = "https://attacker.example.net/jwks.json"
    rsps.get(evil, json=s.jwks(s.ec_p384("attacker")))
    app = s.make_app(tmp_path)  # inline JWKS with the genuine keys
    # genuine key, odd jku: accepted with the configured key
    assert_ok(post(app, s.token(s.ec_p384(), headers={"jku": evil})))
    # attacker key with the genuine kid: signature fails against the configured key
    forged = s.Key(s.ec_p384().kid, "ES384", s.ec_p384("attacker").private)
    assert_rejected(post(app, s.token(forged, headers={"jku": evil})), caplog, "signature verification failed")
    assert len(rsps.calls) == 0


def test_jku_on_another_issuers_allowlist_not_fetched(tmp_path, rsps, caplog):
    other_jku = "https://other-ehr.example.com/jwks.json"
    rsps.get(other_jku, json=s.jwks(s.ec_p384()))
    issuers = {
        s.ISS: {"jku_allowlist": [s.JKU]},
        "https://other-ehr.example.com": {"jku_allowlist": [other_jku]},
    }
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=issuers)
    assert_rejected(post(app, s.token(s.ec_p384(), headers={"jku": other_jku})), caplog, "no usable key source")
    assert len(rsps.calls) == 0


def test_jku_redirect_not_followed(tmp_path, rsps, caplog):
    evil = "https://attacker.example.net/jwks.json"
    rsps.get(s.JKU, status=302, headers={"Location": evil})
    rsps.get(evil, json=s.jwks(s.ec_p384()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jku_allowlist=[s.JKU]))
    assert_rejected(post(app, s.token(s.ec_p384(), headers={"jku": s.JKU})), caplog, "no key with the token's kid")
    assert [c.request.url for c in rsps.calls] == [s.JKU]


def test_jwks_endpoint_down_is_401_not_500(tmp_path, rsps, caplog):
    rsps.get(s.JWKS_URL, status=503)
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_rejected(post(app, s.token(s.rsa_2048())), caplog, "no key with the token's kid")


def test_jwks_endpoint_timeout_is_401_not_500(tmp_path, rsps, caplog):
    rsps.get(s.JWKS_URL, body=requests.exceptions.ReadTimeout("slow"))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_rejected(post(app, s.token(s.rsa_2048())), caplog, "no key with the token's kid")
    assert any(getattr(r, "reason", "") == "ReadTimeout" for r in caplog.records if r.name == "myositis_cds.auth")


def test_jwks_fetch_uses_explicit_timeout(tmp_path, rsps):
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_ok(post(app, s.token(s.rsa_2048())))
    assert rsps.calls[0].request.req_kwargs["timeout"] == auth.jwks.JWKS_TIMEOUT_S


def test_jwks_endpoint_unreachable_is_401(tmp_path, rsps, caplog):
    # Nothing registered: responses raises ConnectionError, like a refused connection.
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL))
    assert_rejected(post(app, s.token(s.rsa_2048())), caplog, "no key with the token's kid")


def test_jwks_oversized_or_invalid_is_401(tmp_path, rsps, caplog):
    rsps.get(s.JWKS_URL, body=b"x" * (auth.jwks.MAX_JWKS_BYTES + 1))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL), JWKS_MIN_REFRESH_S=0)
    assert_rejected(post(app, s.token(s.rsa_2048())), caplog, "no key with the token's kid")
    rsps.replace(responses.GET, s.JWKS_URL, body=b"not json")
    assert_rejected(post(app, s.token(s.rsa_2048())), caplog, "no key with the token's kid")


def test_stale_keys_used_when_refresh_fails(tmp_path, rsps):
    """A brief outage of the key host does not lock out a client whose key we hold."""
    rsps.get(s.JWKS_URL, json=s.jwks(s.rsa_2048()))
    rsps.get(s.JWKS_URL, status=503)
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks_url=s.JWKS_URL), JWKS_MIN_REFRESH_S=0)
    assert_ok(post(app, s.token(s.rsa_2048())))
    entry = app.extensions["myositis_cds.auth"].jwks._entries[s.JWKS_URL]
    entry.fetched_at -= 3600 + 1  # older than the TTL, younger than 2 × TTL
    assert_ok(post(app, s.token(s.rsa_2048())))
    assert len(rsps.calls) == 2


# --------------------------------------------------------------------------
# payload: iss, aud, exp, iat, nbf, lifetime, jti, tenant
# --------------------------------------------------------------------------


def test_untrusted_iss_rejected(app, rsps, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), iss="https://evil.example.net")), caplog, "not a trusted issuer")
    assert len(rsps.calls) == 0


def test_missing_iss_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), iss=s.DROP)), caplog, "claim iss is missing")


def test_no_trusted_issuers_configured_rejects(tmp_path, caplog):
    app = s.make_app(tmp_path, TRUSTED_ISSUERS={})
    assert_rejected(post(app, s.token(s.ec_p384())), caplog, "not a trusted issuer")


def test_aud_string_mismatch_rejected(app, caplog):
    tok = s.token(s.ec_p384(), aud="http://localhost/cds-services/other")
    assert_rejected(post(app, tok), caplog, "aud does not match")


def test_aud_array_containing_url_accepted(app):
    assert_ok(post(app, s.token(s.ec_p384(), aud=["https://elsewhere.example.org", s.SERVICE_URL])))


def test_aud_array_without_url_rejected(app, caplog):
    tok = s.token(s.ec_p384(), aud=["https://elsewhere.example.org", s.DISCOVERY_URL])
    assert_rejected(post(app, tok), caplog, "aud does not match")


def test_aud_missing_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), aud=s.DROP)), caplog, "claim aud is missing")


def test_aud_wrong_type_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), aud=[1, 2])), caplog, "aud")


def test_aud_trailing_slash_normalised(app):
    assert_ok(post(app, s.token(s.ec_p384(), aud=s.SERVICE_URL + "/")))
    assert_ok(post(app, s.token(s.ec_p384(), aud=s.FEEDBACK_URL + "/"), "/cds-services/x/feedback"))
    resp = app.test_client().get("/cds-services", headers=s.bearer(s.token(s.ec_p384(), aud=s.DISCOVERY_URL + "/")))
    assert_ok(resp)


def test_aud_host_case_and_default_port_normalised(app):
    assert_ok(post(app, s.token(s.ec_p384(), aud="HTTP://LOCALHOST:80/cds-services/x")))


def test_aud_path_is_case_sensitive(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), aud="http://localhost/CDS-services/x")), caplog, "aud")


def test_feedback_aud_feedback_url_accepted(app):
    assert_ok(post(app, s.token(s.ec_p384(), aud=s.FEEDBACK_URL), "/cds-services/x/feedback"))


def test_feedback_aud_service_url_accepted_leniently(app):
    assert_ok(post(app, s.token(s.ec_p384(), aud=s.SERVICE_URL), "/cds-services/x/feedback"))


def test_feedback_aud_other_service_rejected(app, caplog):
    tok = s.token(s.ec_p384(), aud="http://localhost/cds-services/y/feedback")
    assert_rejected(post(app, tok, "/cds-services/x/feedback"), caplog, "aud does not match")


def test_service_call_with_feedback_aud_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), aud=s.FEEDBACK_URL)), caplog, "aud does not match")


def test_discovery_with_service_aud_rejected(app, caplog):
    resp = app.test_client().get("/cds-services", headers=s.bearer(s.token(s.ec_p384())))
    assert_rejected(resp, caplog, "aud does not match")


def test_aud_uses_public_base_url_behind_proxy(tmp_path, caplog):
    app = s.make_app(tmp_path, PUBLIC_BASE_URL="https://cds.example.org/myositis/")
    public = "https://cds.example.org/myositis/cds-services/x"
    assert_ok(post(app, s.token(s.ec_p384(), aud=public)))
    # the internal URL the proxy forwards to is not the audience
    assert_rejected(post(app, s.token(s.ec_p384(), aud=s.SERVICE_URL)), caplog, "aud does not match")


def test_expired_rejected(app, caplog):
    now = int(time.time())
    tok = s.token(s.ec_p384(), iat=now - 400, exp=now - 100)
    assert_rejected(post(app, tok), caplog, "exp is in the past")


def test_expired_within_leeway_accepted(app):
    now = int(time.time())
    assert_ok(post(app, s.token(s.ec_p384(), iat=now - 290, exp=now - 10)))


def test_exp_missing_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), exp=s.DROP)), caplog, "claim exp is missing")


def test_iat_missing_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), iat=s.DROP)), caplog, "claim iat is missing")


def test_iat_not_a_number_rejected(app, caplog):
    now = int(time.time())
    assert_rejected(post(app, s.token(s.ec_p384(), iat=str(now))), caplog, "iat is not a number")


def test_iat_in_future_rejected(app, caplog):
    now = int(time.time())
    tok = s.token(s.ec_p384(), iat=now + 120, exp=now + 300)
    assert_rejected(post(app, tok), caplog, "claim iat is in the future")


def test_leeway_configurable(tmp_path, caplog):
    app = s.make_app(tmp_path, JWT_LEEWAY_S=0)
    now = int(time.time())
    assert_rejected(post(app, s.token(s.ec_p384(), iat=now + 30, exp=now + 300)), caplog, "iat is in the future")


def test_lifetime_too_long_rejected(app, caplog):
    now = int(time.time())
    tok = s.token(s.ec_p384(), iat=now, exp=now + 301)
    assert_rejected(post(app, tok), caplog, "exceed JWT_MAX_LIFETIME_S")


def test_lifetime_configurable(tmp_path):
    app = s.make_app(tmp_path, JWT_MAX_LIFETIME_S=3600)
    now = int(time.time())
    assert_ok(post(app, s.token(s.ec_p384(), iat=now, exp=now + 3600)))


def test_nbf_in_future_rejected(app, caplog):
    now = int(time.time())
    tok = s.token(s.ec_p384(), nbf=now + 120)
    assert_rejected(post(app, tok), caplog, "claim nbf is in the future")


def test_jti_missing_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), jti=s.DROP)), caplog, "claim jti is missing")


def test_jti_empty_or_not_string_rejected(app, caplog):
    assert_rejected(post(app, s.token(s.ec_p384(), jti=42)), caplog, "jti is not a string")
    assert_rejected(post(app, s.token(s.ec_p384(), jti="x" * 600)), caplog, "jti is empty or too long")


def test_replay_rejected(app, caplog):
    tok = s.token(s.ec_p384())
    assert_ok(post(app, tok))
    assert_rejected(post(app, tok), caplog, "replay")


def test_same_jti_from_different_issuers_not_a_replay(tmp_path):
    other = "https://other-ehr.example.com"
    issuers = {s.ISS: {"jwks": s.jwks(s.ec_p384())}, other: {"jwks": s.jwks(s.ec_p384())}}
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=issuers)
    assert_ok(post(app, s.token(s.ec_p384(), jti="same")))
    assert_ok(post(app, s.token(s.ec_p384(), jti="same", iss=other)))


def test_replay_rejected_across_app_instances_sharing_db(tmp_path, caplog):
    """Two app instances = two gunicorn workers: the SQLite store is shared."""
    first, second = s.make_app(tmp_path), s.make_app(tmp_path)
    tok = s.token(s.ec_p384())
    assert_ok(post(first, tok))
    assert_rejected(post(second, tok), caplog, "replay")


def test_replay_race_exactly_one_wins(tmp_path):
    apps = [s.make_app(tmp_path) for _ in range(6)]
    tok = s.token(s.ec_p384())
    statuses: list[int] = []
    barrier = threading.Barrier(len(apps))

    def worker(a) -> None:
        barrier.wait()
        statuses.append(post(a, tok).status_code)

    threads = [threading.Thread(target=worker, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [401] * (len(apps) - 1)


def test_replay_store_schema_and_wal(tmp_path, app):

    assert_ok(post(app, s.token(s.ec_p384())))
    conn = sqlite3.connect(tmp_path / "cds.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        cols = [(r[1], r[2]) for r in conn.execute("PRAGMA table_info(jwt_jti)")]
        assert cols == [("jti", "TEXT"), ("expires_at", "BIGINT")]
        assert conn.execute("SELECT COUNT(*) FROM jwt_jti").fetchone()[0] == 1
    finally:
        conn.close()


def test_replay_store_prunes_expired_and_reuses_expired_jti(tmp_path):

    store = storage.open_storage(database=tmp_path / "r.sqlite3").replay
    now = int(time.time())
    assert store.claim(s.ISS, "a", now - 10)  # an old use, already expired ...
    assert store.claim(s.ISS, "a", now + 100)  # ... does not block a new one
    assert not store.claim(s.ISS, "a", now + 100)  # but a live one does
    store.claim(s.ISS, "b", now - 10)
    store._last_prune = -1e9  # pruning is throttled to once a minute; force it
    store.claim(s.ISS, "c", now + 100)
    conn = sqlite3.connect(tmp_path / "r.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM jwt_jti WHERE expires_at < ?", (now,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM jwt_jti").fetchone()[0] == 2  # a and c
    finally:
        conn.close()


def test_replay_store_unavailable_fails_closed_and_says_so(tmp_path, caplog, monkeypatch):
    app = s.make_app(tmp_path)

    def unavailable(*args: object) -> bool:
        raise storage.StorageUnavailable("replay", "postgresql", "OperationalError")

    monkeypatch.setattr(storage.get_storage(app).replay, "claim", unavailable)
    assert_rejected(post(app, s.token(s.ec_p384())), caplog, "replay store unavailable: OperationalError")


def test_default_database_in_instance_path(tmp_path):
    app = s.make_app(tmp_path, DATABASE=None, instance_path=str(tmp_path / "instance"))
    assert_ok(post(app, s.token(s.ec_p384())))
    assert (tmp_path / "instance" / "myositis-cds.sqlite3").exists()


def test_tenant_mismatch_rejected(tmp_path, caplog):
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=s.issuer_config(jwks=s.jwks(s.ec_p384()), tenants=["org-1"]))
    assert_rejected(post(app, s.token(s.ec_p384(), tenant="org-2")), caplog, "tenant")
    assert_rejected(post(app, s.token(s.ec_p384())), caplog, "tenant")
    assert_ok(post(app, s.token(s.ec_p384(), tenant="org-1")))


def test_tenant_not_checked_when_not_configured(app):
    assert_ok(post(app, s.token(s.ec_p384(), tenant="anything")))


# --------------------------------------------------------------------------
# what is (not) protected, and switching auth off
# --------------------------------------------------------------------------


def test_options_preflight_unauthenticated(app):
    client = app.test_client()
    for path in ("/cds-services", "/cds-services/x", "/cds-services/x/feedback"):
        assert client.options(path).status_code == 200


def test_healthz_unauthenticated(app):
    assert app.test_client().get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/preview", "/cds-servicesX"])
def test_non_cds_paths_not_checked(path):
    assert not auth.verify._needs_auth(path, "GET")


@pytest.mark.parametrize("path", ["/cds-services", "/cds-services/", "/cds-services/x", "/cds-services/x/feedback"])
def test_cds_paths_checked(path):
    assert auth.verify._needs_auth(path, "GET") and auth.verify._needs_auth(path, "POST")
    assert not auth.verify._needs_auth(path, "OPTIONS")


def test_unknown_cds_path_authenticates_before_404(app, caplog):
    # Unauthenticated callers learn nothing about which services exist.
    assert_rejected(app.test_client().post("/cds-services/nope", json={}), caplog, "missing Authorization")


def test_auth_disabled_no_check(tmp_path):
    app = s.make_app(tmp_path, AUTH_ENABLED=False)
    resp = app.test_client().post("/cds-services/x", json={})
    assert resp.status_code == 200
    assert resp.get_json()["claims"] is None


def test_token_never_logged(app, caplog):
    tok = s.token(s.ec_p384(), aud="http://localhost/cds-services/other", tenant="secret-tenant")
    post(app, tok)
    post(app, tok.rsplit(".", 1)[0] + ".AAAA")
    post(app, s.token(s.ec_p384(), iss="https://evil.example.net/secret-iss"))
    for record in caplog.records:
        dump = json.dumps(record.__dict__, default=str)
        assert tok.split(".")[1] not in dump
        assert "secret-tenant" not in dump and "secret-iss" not in dump
        assert "/cds-services/other" not in dump


def test_trusted_issuers_as_string_source(tmp_path):
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps(s.issuer_config(jwks=s.jwks(s.ec_p384()))))
    app = s.make_app(tmp_path, TRUSTED_ISSUERS=str(path))
    assert_ok(post(app, s.token(s.ec_p384())))


def test_invalid_trusted_issuers_config_is_401_and_logged(tmp_path, caplog):
    app = s.make_app(tmp_path, TRUSTED_ISSUERS={s.ISS: {"jwks_uri": "https://typo.example.org"}})
    assert_rejected(post(app, s.token(s.ec_p384())), caplog, "TRUSTED_ISSUERS is invalid")


# --------------------------------------------------------------------------
# load_trusted_issuers
# --------------------------------------------------------------------------

SANDBOX = {"https://sandbox.cds-hooks.org": {"jku_allowlist": ["https://sandbox.cds-hooks.org/.well-known/jwks.json"]}}


def test_load_from_json_string():
    assert load_trusted_issuers(json.dumps(SANDBOX)) == SANDBOX


def test_load_from_json_file(tmp_path):
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps(SANDBOX))
    assert load_trusted_issuers(str(path)) == SANDBOX


def test_load_from_yaml_file(tmp_path):
    path = tmp_path / "issuers.yaml"
    path.write_text(
        "https://sandbox.cds-hooks.org:\n"
        "  jku_allowlist:\n"
        "    - https://sandbox.cds-hooks.org/.well-known/jwks.json\n"
        "https://fhir.epic.example.org:\n"
        "  jwks_url: https://fhir.epic.example.org/api/epic/2019/Security/Open/PublicKeys/1/jwks\n"
        "  tenants: [org-1]\n"
    )
    loaded = load_trusted_issuers(str(path))
    assert loaded["https://sandbox.cds-hooks.org"] == SANDBOX["https://sandbox.cds-hooks.org"]
    assert loaded["https://fhir.epic.example.org"]["tenants"] == ["org-1"]


def test_load_inline_jwks_and_localhost_http():
    src = {"http://localhost:8080": {"jwks": s.jwks(s.ec_p384()), "jwks_url": "http://127.0.0.1:9/jwks"}}
    assert load_trusted_issuers(json.dumps(src))["http://localhost:8080"]["jwks"]["keys"][0]["kid"] == "ec-1"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"https://a": "x"}, "must be an object"),
        ({"https://a": {}}, "needs at least one of"),
        ({"https://a": {"jwks_uri": "https://a/j"}}, "unknown field"),
        ({"https://a": {"jwks_url": "http://a.example.org/j"}}, "https://"),
        ({"https://a": {"jwks_url": 5}}, "non-empty URL"),
        ({"https://a": {"jku_allowlist": "https://a/j"}}, "list of non-empty strings"),
        ({"https://a": {"jku_allowlist": ["ftp://a/j"]}}, "jku_allowlist[0]"),
        ({"https://a": {"jwks": {"keys": []}}}, "at least one key"),
        ({"https://a": {"jwks": {"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}}}, "symmetric"),
        ({"https://a": {"jwks": {"keys": [{"kty": "EC", "crv": "P-384"}]}}}, "kid"),
        ({"https://a": {"jwks": {"keys": [{"kty": "EC", "kid": "k", "d": "x"}]}}}, "private key"),
        ({"https://a": {"jwks_url": "https://a/j", "tenants": "t"}}, "tenants"),
    ],
)
def test_load_rejects_bad_shapes(config, message):
    with pytest.raises(TrustedIssuersError) as exc:
        load_trusted_issuers(json.dumps(config))
    assert message in str(exc.value)
    assert "https://a" in str(exc.value)  # the error says which issuer


def test_validate_rejects_non_object():
    with pytest.raises(TrustedIssuersError, match="must be an object"):
        auth.validate_trusted_issuers([])


def test_load_invalid_json_string():
    with pytest.raises(TrustedIssuersError, match="invalid JSON"):
        load_trusted_issuers("{not json")


def test_load_missing_file(tmp_path):
    with pytest.raises(TrustedIssuersError, match="cannot read"):
        load_trusted_issuers(str(tmp_path / "nope.json"))


def test_load_invalid_yaml_file(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("a: [unclosed\n")
    with pytest.raises(TrustedIssuersError, match="invalid YAML"):
        load_trusted_issuers(str(path))


def test_load_error_names_file(tmp_path):
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"https://a": {}}))
    with pytest.raises(TrustedIssuersError, match="issuers.json"):
        load_trusted_issuers(str(path))


def test_pyjwt_is_the_verifier():
    # Guard against someone swapping in hand-rolled crypto.
    assert auth.verify.jwt is jwt
