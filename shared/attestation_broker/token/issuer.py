"""Broker tokens: EAR-shaped JWTs (draft-ietf-rats-ear-04 §3, underscore claim names; docs/architecture.md "Tokens").

:class:`TokenService` turns an :class:`~attestation_broker.appraisal.Appraisal` into signed claims and verifies broker
tokens against the published key ring. Signing goes through a :class:`~attestation_broker.token.signers.Signer`
(local key or KMS) so the private key never needs to be in this process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation_broker import jsonlimits
from attestation_broker.appraisal import Appraisal
from attestation_broker.errors import CONFIG_INVALID, TOKEN_EXPIRED, TOKEN_INVALID, TOKEN_MALFORMED, reflect
from attestation_broker.evidence.jose.jws import b64url_segment, json_object
from attestation_broker.token.keys import KeyRing
from attestation_broker.token.signers import ES256, P256_ORDER, b64url

EAR_PROFILE = "tag:github.com,2023:veraison/ear"
VERIFIER_ID = {"developer": "attestation-broker", "build": "0.1.0"}
MAX_TOKEN_BYTES = 64 * 1024
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


# NumericDate (RFC 7519 §2) as the broker writes it: whole seconds, 0 .. 9999-12-31T23:59:59Z.
MAX_NUMERIC_DATE = 253402300799


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    """An integer time claim in range; strings, floats (1e300), booleans and negatives are TOKEN_INVALID."""
    value = claims.get(name)
    if type(value) is not int or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TOKEN_INVALID(f"{name} must be an integer NumericDate")
    return value


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


@lru_cache(maxsize=64)
def _header_segment(algorithm: str, key_id: str) -> str:
    """The encoded JWS protected header (RFC 7515 §4) of one signing key: the same bytes for every token."""
    return b64url(json.dumps({"alg": algorithm, "kid": key_id, "typ": "JWT"}, separators=(",", ":")).encode())


class TokenService:
    def __init__(self, keyring: KeyRing, *, issuer: str, audience: str, ttl: timedelta) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}

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
        signing_input = (
            _header_segment(signer.algorithm, signer.key_id) + "." + b64url(jsonlimits.dumps(claims, sort_keys=True))
        )
        signature = signer.sign(signing_input.encode())
        return signing_input + "." + b64url(signature)

    def _verify_key(self, kid: object, now: datetime) -> ec.EllipticCurvePublicKey:
        jwk = self.keyring.verification_jwk(kid, ES256, now)
        if jwk is None or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise TOKEN_INVALID(f"key id {reflect(kid)} is not among the published keys")
        # Keyed by the whole JWK, so a rotated key under a reused kid is never served from the memo.
        memo = json.dumps(jwk, sort_keys=True)
        key = self._keys.get(memo)
        if key is None:
            try:
                loaded = jwt.PyJWK(jwk).key
            except jwt.PyJWTError:
                # Only a JWKS file given to ``token verify`` can hold one; the broker's own keys are well-formed.
                raise CONFIG_INVALID(f"published key {reflect(kid)} is not a usable P-256 JWK") from None
            assert isinstance(loaded, ec.EllipticCurvePublicKey)  # kty EC / crv P-256 checked above
            key = self._keys[memo] = loaded
        return key

    def verify(self, token: str, *, now: datetime, audience: str | None = None) -> dict[str, Any]:
        """Verify a broker token against the published keys; raise TOKEN_* codes.

        RFC 7515 §5.2 for an ES256 compact JWS, done here rather than by PyJWT because PyJWT validates base64url
        character by character in Python, twice per token, which was more than half of a token exchange; the
        rules are the same strict ones the upstream-token kinds apply (:mod:`attestation_broker.evidence.jose.jws`)
        and the signature check is ``cryptography``'s. Beyond RFC 7518 §3.4, a high-S signature is refused: the
        broker signs low-S only (``signers.der_to_jose``), so (r, n - s) is a re-encoded token — one token, one
        string.
        """
        if len(token) > MAX_TOKEN_BYTES:
            raise TOKEN_MALFORMED("token too large")
        parts = token.split(".")
        if len(parts) != 3:
            raise TOKEN_MALFORMED("not a compact JWS")
        header = json_object(b64url_segment(parts[0], "header"), "header")
        claims = json_object(b64url_segment(parts[1], "payload"), "payload")
        signature = b64url_segment(parts[2], "signature")
        if header.get("alg") != "ES256":
            raise TOKEN_INVALID(f"unexpected algorithm {reflect(header.get('alg'))}; broker tokens are ES256")
        if "crit" in header:
            raise TOKEN_INVALID("'crit' header extensions are not supported")
        key = self._verify_key(header.get("kid"), now)
        if len(signature) != 64:
            raise TOKEN_INVALID("signature or registered claims do not verify")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if s > P256_ORDER // 2:
            raise TOKEN_INVALID("signature is not a low-S ES256 signature")
        try:
            key.verify(encode_dss_signature(r, s), f"{parts[0]}.{parts[1]}".encode("ascii"), ECDSA_SHA256)
        except (InvalidSignature, ValueError):
            raise TOKEN_INVALID("signature or registered claims do not verify") from None
        # The signature verified, so the values quoted below are the broker's own.
        missing = [name for name in ("exp", "iat", "nbf", "iss", "aud", "jti") if name not in claims]
        if missing:
            raise TOKEN_INVALID(f"registered claims missing: {', '.join(missing)}")
        expected = audience or self.audience
        found = claims["aud"]
        if not (found == expected or (isinstance(found, list) and expected in found)):
            raise TOKEN_INVALID(f"audience mismatch: expected {reflect(expected)}, the token has {reflect(found)}")
        if claims["iss"] != self.issuer:
            raise TOKEN_INVALID(
                f"issuer mismatch: expected {reflect(self.issuer)}, the token has {reflect(claims['iss'])}"
            )
        exp, nbf, _iat = (_numeric_date(claims, name) for name in ("exp", "nbf", "iat"))
        ts = int(now.timestamp())
        if ts >= exp:
            raise TOKEN_EXPIRED()
        if ts < nbf:
            raise TOKEN_INVALID("token not yet valid")
        return claims
