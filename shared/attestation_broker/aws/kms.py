"""Token signers backed by AWS KMS asymmetric keys (KeyUsage SIGN_VERIFY): ES256 on ECC_NIST_P256 and
RS256 on RSA_2048 (or larger) with ``RSASSA_PKCS1_V1_5_SHA_256``, whose signature is already the JOSE form
(RFC 7518 §3.3).

KMS ``Sign`` with ``SigningAlgorithm=ECDSA_SHA_256`` returns a DER ``ECDSA-Sig-Value``; JOSE wants raw
``r ‖ s`` (RFC 7518 §3.4), so it is converted with :func:`der_to_jose`. With ``MessageType=RAW`` KMS hashes
the message itself, which it accepts up to 4096 bytes; a longer JWS signing input is hashed here and sent
as ``MessageType=DIGEST`` (the same signature either way). The public key comes from ``GetPublicKey``
(DER SubjectPublicKeyInfo) once, and is published as a JWK with an RFC 7638 ``kid``.
Any AWS failure (throttling, network, access denied, disabled key) is SIGNER_UNAVAILABLE (503).
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation_broker.aws.clients import LazyClient, aws_errors, error_name
from attestation_broker.errors import CONFIG_INVALID, SIGNER_UNAVAILABLE
from attestation_broker.token.signers import ES256, RS256, der_to_jose, ec_public_jwk, rsa_public_jwk

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

# KMS Sign: "If you provide a message [MessageType RAW], it must be 4096 bytes or less."
KMS_RAW_MESSAGE_LIMIT = 4096
# JOSE algorithm -> (accepted KMS key specs, KMS SigningAlgorithm).
KMS_ALGORITHMS = {
    ES256: (("ECC_NIST_P256",), "ECDSA_SHA_256"),
    RS256: (("RSA_2048", "RSA_3072", "RSA_4096"), "RSASSA_PKCS1_V1_5_SHA_256"),
}


class KmsSigner:
    """The Signer protocol (attestation_broker.token.signers) over a KMS key id, ARN or alias."""

    def __init__(self, key_id: str, client: KMSClient | None = None, *, algorithm: str = ES256) -> None:
        if not key_id:
            raise CONFIG_INVALID("KMS signer needs a key id or ARN")
        if algorithm not in KMS_ALGORITHMS:
            raise CONFIG_INVALID(f"unsupported KMS signing algorithm {algorithm}")
        self.algorithm = algorithm
        self._specs, self._kms_algorithm = KMS_ALGORITHMS[algorithm]
        self._key_id = key_id
        self._lazy = LazyClient("kms", client)
        self._jwk: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _client(self) -> KMSClient:
        client: KMSClient = self._lazy.get()
        return client

    def _public_jwk(self) -> dict[str, str]:
        with self._lock:
            if self._jwk is not None:
                return self._jwk
            try:
                response = self._client().get_public_key(KeyId=self._key_id)
            except aws_errors() as exc:
                raise SIGNER_UNAVAILABLE(f"KMS GetPublicKey failed: {error_name(exc)}") from None
            # CustomerMasterKeySpec: the deprecated name KMS still returns (and moto returns alone).
            spec = response.get("KeySpec") or response.get("CustomerMasterKeySpec")
            if spec not in self._specs or response.get("KeyUsage") != "SIGN_VERIFY":
                raise CONFIG_INVALID(
                    f"KMS {self.algorithm} signing key must be {' or '.join(self._specs)} with KeyUsage SIGN_VERIFY"
                )
            key = serialization.load_der_public_key(response["PublicKey"])
            if isinstance(key, ec.EllipticCurvePublicKey) and self.algorithm == ES256:
                self._jwk = ec_public_jwk(key)
            elif isinstance(key, rsa.RSAPublicKey) and self.algorithm == RS256:
                self._jwk = rsa_public_jwk(key)
            else:
                raise CONFIG_INVALID(f"KMS public key does not match {self.algorithm}")
            return self._jwk

    @property
    def key_id(self) -> str:
        return self._public_jwk()["kid"]

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._public_jwk())

    def sign(self, signing_input: bytes) -> bytes:
        if len(signing_input) <= KMS_RAW_MESSAGE_LIMIT:
            message, message_type = signing_input, "RAW"
        else:
            message, message_type = hashlib.sha256(signing_input).digest(), "DIGEST"
        try:
            response = self._client().sign(
                KeyId=self._key_id,
                Message=message,
                MessageType=message_type,  # type: ignore[arg-type]
                SigningAlgorithm=self._kms_algorithm,  # type: ignore[arg-type]
            )
        except aws_errors() as exc:
            raise SIGNER_UNAVAILABLE(f"KMS Sign failed: {error_name(exc)}") from None
        try:
            if self.algorithm == RS256:
                return bytes(response["Signature"])
            return der_to_jose(response["Signature"])
        except (ValueError, KeyError):
            raise SIGNER_UNAVAILABLE("KMS returned a malformed signature") from None
