"""Signature, issuer, time, audience and nonce checks for Microsoft Azure Attestation tokens.

* Issuer pinned (``settings.maa_issuers``), checked on the unverified payload before any fetch and again
  after the signature verified. A custom MAA instance can share signing keys with a shared one, so a good
  signature never stands in for the issuer check.
* The key is looked up by ``kid`` ONLY in ``<pinned issuer>/certs`` (MAA's JWKS, whose keys carry x5c).
  The token's ``jku`` (and ``x5u``/``jwk``/``x5c``) headers are never followed, whatever they say; they are
  recorded in ``upstream.ignored_headers``. A key whose certificate is outside its validity is CERT_EXPIRED.
* Audience: MAA tokens have no ``aud``; when one is present and audiences are configured it must match.
* Nonce binding: ``x-ms-runtime.client-payload.nonce`` must equal ``binding.token_nonce()`` (lowercase hex
  of the broker nonce) as a string, exactly. The attester passes that string as the client payload nonce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from attestation_broker.errors import CERT_EXPIRED, TOKEN_MALFORMED
from attestation_broker.evidence.azure_token.abi import MaaTokenClaims, parse_claims
from attestation_broker.evidence.jose.checks import (
    AudienceCheck,
    check_audience,
    check_nonce,
    check_times,
    pinned_issuer,
    provenance,
)
from attestation_broker.evidence.jose.jws import MAX_TOKEN_BYTES, check_header, parse_compact, verify_signature
from attestation_broker.evidence.jose.keys import KeySource
from attestation_broker.verifier import Submission, VerifyContext

ALLOWED_ALGS = frozenset({"RS256"})
CERTS_PATH = "/certs"


@dataclass(frozen=True)
class VerifiedMaaToken:
    claims: MaaTokenClaims
    payload: Mapping[str, Any]
    audience: AudienceCheck
    upstream: Mapping[str, Any]
    collateral: tuple[Mapping[str, Any], ...]
    nonce_checked: bool


def verify_token(
    token: bytes, submission: Submission, ctx: VerifyContext, keys: KeySource, *, max_bytes: int = MAX_TOKEN_BYTES
) -> VerifiedMaaToken:
    jws = parse_compact(token, max_bytes=max_bytes)
    ignored = check_header(jws, ALLOWED_ALGS)
    issuer = pinned_issuer(jws.unverified_payload, ctx.settings.maa_issuers)
    kid = jws.kid
    if kid is None:
        raise TOKEN_MALFORMED("MAA token header has no 'kid'")
    certs_url = issuer + CERTS_PATH  # from the pinned issuer string, never from the token
    resolved = keys.resolve(ctx, issuer=issuer, jwks_url=certs_url, kid=kid)
    skew = timedelta(seconds=ctx.settings.clock_skew_seconds)
    signer = resolved.key
    if (signer.not_before is not None and ctx.now + skew < signer.not_before) or (
        signer.not_after is not None and ctx.now - skew > signer.not_after
    ):
        raise CERT_EXPIRED("the MAA signing certificate for this kid is outside its validity")
    payload = verify_signature(jws, signer.key)
    pinned_issuer(payload, (issuer,))
    validity = check_times(payload, ctx.now, ctx.settings.clock_skew_seconds)
    audience = check_audience(payload, ctx.settings.upstream_audiences, required_when_configured=False)
    claims = parse_claims(payload)
    if submission.binding is not None:
        check_nonce("azure-token", claims.client_nonces(), submission.binding)
    jku = jws.header.get("jku")
    upstream = provenance(
        iss=issuer,
        header=jws.header,
        payload=payload,
        token_sha256=jws.sha256,
        key_source="maa-certs",
        key_url=certs_url,
        validity=validity,
        audience=audience,
        ignored_headers=ignored,
        header_jku_matches_issuer=isinstance(jku, str) and jku == certs_url,
        keys_refetched=resolved.refetched,
    )
    return VerifiedMaaToken(
        claims=claims,
        payload=payload,
        audience=audience,
        upstream=upstream,
        collateral=resolved.collateral,
        nonce_checked=submission.binding is not None,
    )
