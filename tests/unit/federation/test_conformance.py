"""Conformance of issued federation tokens, /jwks and discovery with each cloud's documented rules
(docs/federation.md), over tokens from real evidence vectors and the test verifier.

Rules encoded (from the clouds' documentation):
- Microsoft Entra federated credentials: RS256 only (ES256 fails with AADSTS5002738); ``aud`` is the single
  string ``api://AzureADTokenExchange``; ``sub`` matches one credential exactly (≤ 600 characters) and an
  identity holds at most 20 credentials, so ``sub`` must be low-cardinality.
- AWS STS AssumeRoleWithWebIdentity: RS256/384/512 or ES256/384/512; integer timestamps; web identity token
  ≤ 20,000 characters; session tags only from the
  ``https://aws.amazon.com/tags`` claim (``principal_tags``: key → one-value list, ≤ 50 tags, keys ≤ 128 and
  values ≤ 256 characters of letters, digits, spaces and ``_.:/=+-@``; ``transitive_tag_keys`` ⊆ the tags).
- Google workload identity federation (OIDC): RS256 or ES256 with a ``kid``; ``google.subject`` (from ``sub``)
  ≤ 127 bytes; mapped attributes ≤ 8 KB; an uploaded JWKS holds ≤ 8 keys whose members are only
  ``kty, alg, use, kid, n, e, x, y, crv``.
- All: OpenID Connect Discovery lists RS256; ``iss`` is identical in token and discovery; integer NumericDate
  times; one string ``aud``; flat claims (objects only ``cnf`` and the AWS tag claim), < 2 KB, no ``submods``.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.registry import default_registry

from tests.support.broker import Harness, make_harness
from tests.support.federation import AUDIENCES, AWS_AUDIENCE, AZURE_AUDIENCE, GCP_AUDIENCE, attest, exchange
from tests.support.vectors import vector
from tests.unit.core.test_schema import CASES

ALGS = {AZURE_AUDIENCE: {"RS256"}, AWS_AUDIENCE: {"RS256", "ES256"}, GCP_AUDIENCE: {"RS256", "ES256"}}
GOOGLE_JWK_MEMBERS = {"kty", "alg", "use", "kid", "n", "e", "x", "y", "crv"}
AWS_TAG_TEXT = re.compile(r"^[\w .:/=+\-@]*$")
OBJECT_CLAIMS = {"cnf", "https://aws.amazon.com/tags"}


def thumbprint(jwk: dict[str, str]) -> str:
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, sort_keys=True, separators=(",", ":")).encode()
    return jwt.utils.base64url_encode(hashlib.sha256(canonical).digest()).decode()


def get(h: Harness, path: str) -> Any:
    return h.api.handle(HttpRequest("GET", path, {}, b"")).json()


def check_jwks_and_discovery(h: Harness) -> None:
    jwks = get(h, "/jwks")
    keys = jwks["keys"]
    assert 1 <= len(keys) <= 8  # Google's uploadable JWKS limit
    assert len({k["kid"] for k in keys}) == len(keys)
    for key in keys:
        assert set(key) <= GOOGLE_JWK_MEMBERS, set(key) - GOOGLE_JWK_MEMBERS
        assert key["use"] == "sig" and key["kid"] == thumbprint(key)
        assert key["alg"] == {"RSA": "RS256", "EC": "ES256"}[key["kty"]]
        if key["kty"] == "RSA":
            assert len(jwt.utils.base64url_decode(key["n"])) * 8 >= 2048
    disc = get(h, "/.well-known/openid-configuration")
    assert {"RS256", "ES256"} <= set(disc["id_token_signing_alg_values_supported"])
    assert disc["jwks_uri"] == disc["issuer"] + "/jwks" and not disc["issuer"].endswith("/")
    assert disc["response_types_supported"] and disc["subject_types_supported"]


def check_token(h: Harness, token: str, audience: str, subject: dict[str, Any]) -> dict[str, Any]:
    assert len(token) < 2048 and len(token) <= 20_000
    header = jwt.get_unverified_header(token)
    assert header["alg"] in ALGS[audience] and header["kid"] and header["typ"] == "JWT"
    jwks = jwt.PyJWKSet.from_dict(get(h, "/jwks"))
    issuer = get(h, "/.well-known/openid-configuration")["issuer"]
    claims: dict[str, Any] = jwt.decode(
        token,
        jwks[header["kid"]].key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=issuer,
        options={
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
            "require": ["exp", "iat", "nbf", "sub", "jti"],
        },
    )
    assert isinstance(claims["aud"], str)
    for name in ("iat", "nbf", "exp"):
        assert type(claims[name]) is int
    assert claims["iat"] == claims["nbf"] < claims["exp"] <= subject["exp"]
    assert claims["exp"] - claims["iat"] <= 3600
    sub = claims["sub"]
    assert isinstance(sub, str) and 0 < len(sub.encode()) <= 127
    instance = next(iter(subject["submods"].values()))["ear_attester_claims"].get("instance", {})
    for fact in instance.values():
        assert str(fact) not in sub, "sub must never carry an instance id"
    for name, value in claims.items():
        if name in OBJECT_CLAIMS:
            assert isinstance(value, dict)
        else:
            assert isinstance(value, str | int) and not isinstance(value, bool), name
    assert "submods" not in claims and claims["ear_status"] in ("affirming", "warning")
    tags = claims.get("https://aws.amazon.com/tags")
    if audience == AWS_AUDIENCE:
        principal = tags["principal_tags"]
        assert 0 < len(principal) <= 50
        for key, values in principal.items():
            assert len(key) <= 128 and AWS_TAG_TEXT.match(key)
            assert isinstance(values, list) and len(values) == 1
            assert len(values[0]) <= 256 and AWS_TAG_TEXT.match(values[0])
        assert set(tags.get("transitive_tag_keys", [])) <= set(principal)
        assert principal["ear_status"] == [claims["ear_status"]]
    else:
        assert tags is None
    if audience == AZURE_AUDIENCE:
        assert header["alg"] == "RS256" and len(sub) <= 600
    if audience == GCP_AUDIENCE:
        mapped = {k: v for k, v in claims.items() if k not in OBJECT_CLAIMS}
        assert len(json.dumps(mapped).encode()) <= 8192
    return claims


@pytest.mark.parametrize("audience", AUDIENCES)
def test_test_verifier_tokens_conform(tmp_path: Path, audience: str) -> None:
    h = make_harness(tmp_path, federation_audiences=AUDIENCES)
    check_jwks_and_discovery(h)
    ear = attest(h)
    resp = exchange(h, ear["token"], audience)
    assert resp.status == 200, resp.body
    check_token(h, resp.json()["access_token"], audience, ear["claims"])


@pytest.mark.parametrize(("kind", "body", "now", "policy"), CASES)
def test_real_evidence_tokens_conform_for_every_cloud(
    tmp_path: Path, kind: str, body: dict[str, Any], now: str | None, policy: dict[str, Any]
) -> None:
    h = make_harness(tmp_path, verifiers=[default_registry()[kind]], policy=policy, federation_audiences=AUDIENCES)
    if now is None:
        from tests.unit.nitro.support import NONDEBUG

        h.clock[0] = NONDEBUG.now
    else:
        h.clock[0] = datetime.fromisoformat(now)
    resp = h.api.handle(
        HttpRequest("POST", f"/v1/attest/{kind}", {"content-type": "application/json"}, json.dumps(body).encode())
    )
    assert resp.status == 200, resp.body
    ear = resp.json()
    check_jwks_and_discovery(h)
    for audience in AUDIENCES:
        exchanged = exchange(h, ear["token"], audience)
        if ear["claims"]["ear_status"] not in ("affirming", "warning"):
            assert exchanged.json()["error"] == "invalid_grant"
            continue
        assert exchanged.status == 200, exchanged.body
        claims = check_token(h, exchanged.json()["access_token"], audience, ear["claims"])
        assert claims["tee"] == next(iter(ear["claims"]["submods"].values()))["ear_attester_claims"]["tee"]


def test_largest_ear_token_gcp_vtpm_still_gives_a_small_federation_token(tmp_path: Path) -> None:
    """A real GCE vTPM attestation (the biggest EAR tokens: full PCR banks, event-log facts, instance identity):
    the federation token stays under 2 KB, and the instance id appears only as a flat claim, never in ``sub``."""
    import base64

    from tests.unit.gcp_vtpm.test_gcp_vtpm import INTERMEDIATE_2, NOW, PB

    h = make_harness(tmp_path, verifiers=[default_registry()["gcp-vtpm"]], federation_audiences=AUDIENCES)
    h.clock[0] = NOW
    body = {
        "evidence": base64.b64encode(vector(PB)).decode(),
        "extras": [base64.b64encode(vector(INTERMEDIATE_2)).decode()],
    }
    resp = h.api.handle(
        HttpRequest("POST", "/v1/attest/gcp-vtpm", {"content-type": "application/json"}, json.dumps(body).encode())
    )
    assert resp.status == 200, resp.body
    ear = resp.json()
    assert len(ear["token"]) > 4096
    for audience in AUDIENCES:
        exchanged = exchange(h, ear["token"], audience)
        assert exchanged.status == 200, exchanged.body
        claims = check_token(h, exchanged.json()["access_token"], audience, ear["claims"])
        assert claims["instance_id"] == "6797026933021542085" and claims["instance_zone"] == "us-central1-a"
        assert claims["platform"] == "gcp" and claims["tee"] == "vtpm"
