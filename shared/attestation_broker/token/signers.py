"""Token signers (DESIGN.md §4): a local ES256 key and AWS KMS (ECC_NIST_P256, MessageType=RAW).

A :class:`Signer` produces JOSE signatures (RFC 7518 §3.4: raw ``r ‖ s``, 32 bytes each for ES256)
over the JWS signing input and exposes its public JWK with ``kid`` = RFC 7638 thumbprint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attestation_broker.errors import CONFIG_INVALID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ec_public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """Public JWK of a P-256 key with ``kid`` = RFC 7638 thumbprint, ``use=sig``, ``alg=ES256``."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise CONFIG_INVALID("signing key must be P-256 for ES256")
    numbers = key.public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    # RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    thumbprint = b64url(hashlib.sha256(canonical).digest())
    return {**jwk, "kid": thumbprint, "use": "sig", "alg": "ES256"}


def der_to_jose(der: bytes, size: int = 32) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


class Signer(Protocol):
    algorithm: str

    @property
    def key_id(self) -> str: ...

    def public_jwk(self) -> dict[str, Any]: ...

    def sign(self, signing_input: bytes) -> bytes:
        """JOSE signature over the JWS signing input; raises SIGNER_UNAVAILABLE when the backend is down."""
        ...


class LocalSigner:
    """An ES256 key held in memory, optionally persisted as PKCS#8 PEM (0600) under the data directory."""

    algorithm = "ES256"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._key = private_key
        self._jwk = ec_public_jwk(private_key.public_key())

    @classmethod
    def generate(cls) -> LocalSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load_or_create(cls, path: Path) -> LocalSigner:
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise CONFIG_INVALID(f"{path} is not an EC private key")
            return cls(key)
        signer = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = signer._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return signer

    @property
    def key_id(self) -> str:
        return self._jwk["kid"]

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._jwk)

    def sign(self, signing_input: bytes) -> bytes:
        return der_to_jose(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
