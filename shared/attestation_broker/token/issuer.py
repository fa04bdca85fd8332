"""Broker tokens: EAR-shaped JWTs (draft-ietf-rats-ear-04 §3, underscore claim names; docs/architecture.md "Tokens").

:class:`TokenService` turns an :class:`~attestation_broker.appraisal.Appraisal` into signed claims and verifies broker
tokens against the published key ring. Signing goes through a :class:`~attestation_broker.token.signers.Signer`
(local key or KMS) so the private key never needs to be in this process.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt

from attestation_broker.appraisal import Appraisal
from attestation_broker.errors import TOKEN_EXPIRED, TOKEN_INVALID, TOKEN_MALFORMED, reflect
from attestation_broker.token.keys import KeyRing
from attestation_broker.token.signers import P256_ORDER, b64url

EAR_PROFILE = "tag:github.com,2023:veraison/ear"
VERIFIER_ID = {"developer": "attestation-broker", "build": "0.1.0"}
MAX_TOKEN_BYTES = 64 * 1024


# NumericDate (RFC 7519 §2) as the broker writes it: whole seconds, 0 .. 9999-12-31T23:59:59Z.
MAX_NUMERIC_DATE = 253402300799


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    """An integer time claim in range; strings, floats (1e300), booleans and negatives are TOKEN_INVALID."""
    value = claims.get(name)
    if type(value) is not int or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TOKEN_INVALID(f"{name} must be an integer NumericDate")
    return value


def _require_low_s(token: str) -> None:
    """ES256 signatures (r, s) and (r, n - s) both verify; the broker signs low-S only (signers.der_to_jose),
    so a high-S variant is a re-encoded token and is refused: one token, one string."""
    try:
        raw = base64.urlsafe_b64decode(token.rsplit(".", 1)[1] + "==")
    except (ValueError, IndexError):
        raise TOKEN_MALFORMED("signature is not base64url") from None
    if len(raw) != 64 or int.from_bytes(raw[32:], "big") > P256_ORDER // 2:
        raise TOKEN_INVALID("signature is not a low-S ES256 signature")


def subject_of(appraisal: Appraisal, evidence_sha256: str) -> str:
    """A stable subject: the platform instance when known, else the measurement, else the evidence digest."""
    claims = appraisal.attester_claims
    instance = claims.get("instance") or {}
    for key in ("id", "vm_id"):
        if isinstance(instance, Mapping) and instance.get(key):
            return f"{appraisal.kind}:{claims.get('platform', 'unknown')}:{instance[key]}"
    if claims.get("measurement"):
        return f"{appraisal.kind}:measurement:{claims['measurement']}"
    return f"{appraisal.kind}:evidence:{evidence_sha256}"


def _unverified_claim(token: str, name: str) -> Any:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get(name)
    except jwt.PyJWTError:
        return None


class TokenService:
    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, ttl: timedelta) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def claims_for(
        self,
        appraisal: Appraisal,
        *,
        evidence_sha256: str,
        now: datetime,
        nonce: bytes | None,
    ) -> dict[str, Any]:
        status = appraisal.status.value
        verifier_claims = {
            **appraisal.verifier_claims,
            "evidence_kind": appraisal.kind,
            "evidence_sha256": evidence_sha256,
        }
        verifier_claims.setdefault("bindings", {"nonce": "not-requested"})
        if appraisal.findings:
            verifier_claims["findings"] = list(appraisal.findings)
        iat = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject_of(appraisal, evidence_sha256),
            "aud": self.audience,
            "iat": iat,
            "nbf": iat,
            "exp": iat + int(self.ttl.total_seconds()),
            "jti": uuid.uuid4().hex,
            "eat_profile": EAR_PROFILE,
            "ear_status": status,
            "ear_verifier_id": dict(VERIFIER_ID),
            "submods": {
                appraisal.kind: {
                    "ear_status": status,
                    "ear_trustworthiness_vector": dict(appraisal.trustworthiness_vector),
                    "ear_appraisal_policy_ids": list(appraisal.policy_ids),
                    "ear_attester_claims": dict(appraisal.attester_claims),
                    "ear_verifier_claims": verifier_claims,
                }
            },
        }
        if nonce is not None:
            claims["eat_nonce"] = nonce.hex()
        if appraisal.cnf:
            claims["cnf"] = dict(appraisal.cnf)
        return claims

    def sign(self, claims: Mapping[str, Any], *, algorithm: str | None = None) -> str:
        """Sign with the active key of ``algorithm`` (default: the EAR token's, ES256)."""
        signer = self.keyring.active if algorithm is None else self.keyring.signer_for(algorithm)
        header = {"alg": signer.algorithm, "kid": signer.key_id, "typ": "JWT"}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        )
        signature = signer.sign(signing_input.encode())
        return signing_input + "." + b64url(signature)

    def verify(self, token: str, *, now: datetime, audience: str | None = None) -> dict[str, Any]:
        """Verify a broker token against the published keys; raise TOKEN_* codes."""
        if len(token) > MAX_TOKEN_BYTES:
            raise TOKEN_MALFORMED("token too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TOKEN_MALFORMED("not a compact JWS") from None
        if header.get("alg") != "ES256":
            raise TOKEN_INVALID(f"unexpected algorithm {reflect(header.get('alg'))}; broker tokens are ES256")
        jwk = next((k for k in self.keyring.published(now) if k["kid"] == header.get("kid")), None)
        if jwk is None:
            raise TOKEN_INVALID(f"key id {reflect(header.get('kid'))} is not among the published keys")
        key = jwt.PyJWK(jwk).key
        try:
            # PyJWT would read the wall clock; exp/nbf are checked below against the injected ``now``.
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=["ES256"],
                audience=audience or self.audience,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iat", "nbf", "iss", "aud", "jti"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError:
            # The signature verified before PyJWT compared claims, so the values quoted here are the broker's.
            found = _unverified_claim(token, "aud")
            raise TOKEN_INVALID(
                f"audience mismatch: expected {reflect(audience or self.audience)}, the token has {reflect(found)}"
            ) from None
        except jwt.InvalidIssuerError:
            found = _unverified_claim(token, "iss")
            raise TOKEN_INVALID(
                f"issuer mismatch: expected {reflect(self.issuer)}, the token has {reflect(found)}"
            ) from None
        except jwt.PyJWTError:
            raise TOKEN_INVALID("signature or registered claims do not verify") from None
        if header.get("alg") == "ES256":
            _require_low_s(token)
        exp, nbf, _iat = (_numeric_date(claims, name) for name in ("exp", "nbf", "iat"))
        ts = int(now.timestamp())
        if ts >= exp:
            raise TOKEN_EXPIRED()
        if ts < nbf:
            raise TOKEN_INVALID("token not yet valid")
        return claims
