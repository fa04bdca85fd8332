"""Signature, issuer, time, audience and nonce checks for Google Cloud Attestation tokens.

Two token forms (Google "Attestation token validation endpoint fields"):

* OIDC: RS256, key by ``kid`` from the JWKS named by ``jwks_uri`` in ``{iss}/.well-known/openid-configuration``
  (OpenID Connect Discovery 1.0 §4; the discovery document's ``issuer`` must equal the pinned issuer);
* PKI: header ``x5c`` chaining to the pinned Confidential Space Root CA (:mod:`.pki`).

The issuer is pinned (``settings.gcp_token_issuers``) and checked before any fetch. ``jku``/``x5u``/``jwk``
headers are never followed. Audience: when ``settings.upstream_audiences`` is empty any ``aud`` is accepted
and recorded, and the appraisal marks instance-identity as a warning (the token may have been minted for
another relying party). Nonce: ``eat_nonce`` (string or list) must contain ``binding.token_nonce()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from attestation_broker import jsonlimits
from attestation_broker.errors import TOKEN_MALFORMED
from attestation_broker.evidence.gcp_token.abi import GcpTokenClaims, parse_claims
from attestation_broker.evidence.gcp_token.errors import GCP_TOKEN_DISCOVERY_INVALID
from attestation_broker.evidence.gcp_token.pki import verify_x5c
from attestation_broker.evidence.jose.checks import (
    AudienceCheck,
    check_audience,
    check_nonce,
    check_times,
    pinned_issuer,
    provenance,
)
from attestation_broker.evidence.jose.jws import (
    MAX_TOKEN_BYTES,
    CompactJws,
    PublicKey,
    check_header,
    parse_compact,
    verify_signature,
)
from attestation_broker.evidence.jose.keys import KeySource, collateral_record
from attestation_broker.verifier import Submission, VerifyContext

ALLOWED_ALGS = frozenset({"RS256"})
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class VerifiedGcpToken:
    claims: GcpTokenClaims
    payload: Mapping[str, Any]
    audience: AudienceCheck
    upstream: Mapping[str, Any]
    collateral: tuple[Mapping[str, Any], ...]
    nonce_checked: bool


def _discovery_validator(issuer: str) -> Any:
    def validate(body: bytes) -> None:
        _jwks_uri(body, issuer)

    return validate


def _jwks_uri(body: bytes, issuer: str) -> str:
    doc = jsonlimits.loads(body, GCP_TOKEN_DISCOVERY_INVALID, "discovery document")
    if not isinstance(doc, dict):
        raise GCP_TOKEN_DISCOVERY_INVALID("discovery document is not an object")
    if not isinstance(doc.get("issuer"), str) or doc["issuer"].rstrip("/") != issuer:
        raise GCP_TOKEN_DISCOVERY_INVALID("discovery 'issuer' differs from the pinned issuer")
    uri = doc.get("jwks_uri")
    if not isinstance(uri, str) or not uri.startswith("https://"):
        raise GCP_TOKEN_DISCOVERY_INVALID("discovery 'jwks_uri' is not an https URL")
    return uri


def _oidc_key(
    jws: CompactJws, issuer: str, ctx: VerifyContext, keys: KeySource
) -> tuple[PublicKey, str, list[dict[str, Any]], bool]:
    kid = jws.kid
    if kid is None:
        raise TOKEN_MALFORMED("OIDC token header has no 'kid'")
    discovery_url = issuer + DISCOVERY_PATH
    discovery = keys.get(ctx, discovery_url, validate=_discovery_validator(issuer), ttl=DISCOVERY_TTL)
    jwks_url = _jwks_uri(discovery.body, issuer)  # re-verified on every use, whatever the cache tier
    resolved = keys.resolve(ctx, issuer=issuer, jwks_url=jwks_url, kid=kid)
    records = [collateral_record("oidc_discovery", discovery_url, discovery), *resolved.collateral]
    return resolved.key.key, jwks_url, records, resolved.refetched


def verify_token(
    token: bytes, submission: Submission, ctx: VerifyContext, keys: KeySource, *, max_bytes: int = MAX_TOKEN_BYTES
) -> VerifiedGcpToken:
    jws = parse_compact(token, max_bytes=max_bytes)
    ignored = check_header(jws, ALLOWED_ALGS)
    issuer = pinned_issuer(jws.unverified_payload, ctx.settings.gcp_token_issuers)
    skew = ctx.settings.clock_skew_seconds
    key_url: str | None
    key: PublicKey
    refetched = False
    if "x5c" in jws.header:
        key, record = verify_x5c(jws.header["x5c"], ctx.now, skew)
        key_source, key_url, collateral = "x5c", None, [record]
        ignored = [name for name in ignored if name != "x5c"]
    else:
        key, key_url, collateral, refetched = _oidc_key(jws, issuer, ctx, keys)
        key_source = "jwks"
    payload = verify_signature(jws, key)
    pinned_issuer(payload, (issuer,))  # the verified payload must carry the same pinned issuer
    validity = check_times(payload, ctx.now, skew)
    audience = check_audience(payload, ctx.settings.upstream_audiences)
    claims = parse_claims(payload)
    if submission.binding is not None:
        check_nonce("gcp-token", claims.eat_nonce, submission.binding)
    upstream = provenance(
        iss=issuer,
        header=jws.header,
        payload=payload,
        token_sha256=jws.sha256,
        key_source=key_source,
        key_url=key_url,
        validity=validity,
        audience=audience,
        ignored_headers=ignored,
        token_form="pki" if key_source == "x5c" else "oidc",
        keys_refetched=refetched,
    )
    return VerifiedGcpToken(
        claims=claims,
        payload=payload,
        audience=audience,
        upstream=upstream,
        collateral=tuple(collateral),
        nonce_checked=submission.binding is not None,
    )
