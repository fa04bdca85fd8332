"""Token signers: local ES256 and RS256 keys, and AWS KMS (ECC_NIST_P256 / RSA_2048, see aws/kms.py).

A :class:`Signer` produces JOSE signatures over the JWS signing input — ES256 as raw ``r ‖ s``
(RFC 7518 §3.4), RS256 as RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3) — and exposes its public JWK
with ``kid`` = RFC 7638 thumbprint, ``alg`` and ``use: sig``. RS256 exists for relying parties that accept
nothing else (Microsoft Entra federated credentials; docs/federation.md); EAR tokens stay ES256.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.files import private_dir


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


ES256 = "ES256"
RS256 = "RS256"
ALGORITHMS = (ES256, RS256)
RSA_MIN_BITS = 2048


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 §3: SHA-256 over the required members only, in lexicographic order, without whitespace."""
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return b64url(hashlib.sha256(canonical).digest())


def _uint(value: int) -> str:
    """RFC 7518 §6.3.1: an unsigned big-endian integer in the minimal number of octets."""
    return b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def rsa_public_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """Public JWK of an RSA key (≥ 2048 bits) with ``kid`` = RFC 7638 thumbprint, ``use=sig``, ``alg=RS256``."""
    if key.key_size < RSA_MIN_BITS:
        raise CONFIG_INVALID(f"RS256 signing key must have at least {RSA_MIN_BITS} bits")
    numbers = key.public_numbers()
    jwk = {"e": _uint(numbers.e), "kty": "RSA", "n": _uint(numbers.n)}
    return {**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": RS256}


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
    return {**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": ES256}


# Order of the P-256 group (SEC 2 §2.4.2): ECDSA signatures (r, s) and (r, n - s) both verify.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def der_to_jose(der: bytes, size: int = 32) -> bytes:
    """DER ECDSA-P256 signature → JOSE ``r ‖ s`` in low-S form (s <= n/2), the only form the broker's
    token verification accepts, so that a token has exactly one valid encoding."""
    r, s = decode_dss_signature(der)
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
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
        private_dir(path.parent)
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


def _write_private(path: Path, pem: bytes) -> None:
    """Create the key file 0600 and exclusively: two processes racing both end up with the first one's key."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


class LocalRsaSigner:
    """An RS256 key (RSASSA-PKCS1-v1_5, SHA-256) held in memory, optionally persisted as PKCS#8 PEM (0600)."""

    algorithm = RS256

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._key = private_key
        self._jwk = rsa_public_jwk(private_key.public_key())

    @classmethod
    def generate(cls, bits: int = RSA_MIN_BITS) -> LocalRsaSigner:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def load_or_create(cls, path: Path) -> LocalRsaSigner:
        if not path.exists():
            signer = cls.generate()
            pem = signer._key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                _write_private(path, pem)
                return signer
            except FileExistsError:
                pass  # another process created it first: use theirs
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise CONFIG_INVALID(f"{path} is not an RSA private key")
        return cls(key)

    @property
    def key_id(self) -> str:
        return self._jwk["kid"]

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._jwk)

    def sign(self, signing_input: bytes) -> bytes:
        return self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


class LazySigner:
    """Loads (or creates) a local key on first use: an RSA key costs ~0.1 s to generate, which a broker that
    never issues or publishes RS256 tokens (and each test's fresh data directory) should not pay at start."""

    def __init__(self, algorithm: str, factory: Callable[[], Signer]) -> None:
        self.algorithm = algorithm
        self._factory = factory
        self._signer: Signer | None = None
        self._lock = threading.Lock()

    def _get(self) -> Signer:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    self._signer = self._factory()
        return self._signer

    @property
    def key_id(self) -> str:
        return self._get().key_id

    def public_jwk(self) -> dict[str, Any]:
        return self._get().public_jwk()

    def sign(self, signing_input: bytes) -> bytes:
        return self._get().sign(signing_input)
