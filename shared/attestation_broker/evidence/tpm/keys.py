"""Attestation-key (AK) public keys in every form the broker receives them.

- TPM2B_PUBLIC / TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4-5): tpm2-tools ``-u`` output, go-tpm-tools ``ak_pub``;
- X.509 SubjectPublicKeyInfo, PEM or DER (RFC 5280 §4.1.2.7): tpm2-tools ``-f pem``, Azure ``akpub.pem``;
- JWK (RFC 7517/7518 §6.2-6.3), RSA or EC: Azure HCL runtime JSON ``HCLAkPub``;
- an already-loaded ``cryptography`` public key (the composites' AK certificates).

The key's identity everywhere is the SHA-256 of its DER SubjectPublicKeyInfo (``spki_sha256``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation_broker import jsonlimits
from attestation_broker.evidence.common import LruMemo

from .abi import (
    ALG_ECC,
    ALG_NULL,
    ALG_RSA,
    ATTR_RESTRICTED,
    ATTR_SIGN,
    ECC_NIST_P256,
    ECC_NIST_P384,
    ECC_NIST_P521,
    TpmPublic,
    looks_like_tpm_public,
    parse_tpm2b_public,
    parse_tpmt_public,
)
from .errors import TPM_AK_MALFORMED, TPM_AK_UNSUPPORTED

AkKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_CURVES: dict[int, ec.EllipticCurve] = {
    ECC_NIST_P256: ec.SECP256R1(),
    ECC_NIST_P384: ec.SECP384R1(),
    ECC_NIST_P521: ec.SECP521R1(),
}
_JWK_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


@dataclass(frozen=True)
class AkPublic:
    """A loaded AK public key.

    ``tpm_public`` is set only when the key came as TPMT_PUBLIC/TPM2B_PUBLIC; then ``restricted`` and the
    scheme are known (restricted signing keys only sign TPM-generated structures). For SPKI/JWK keys they
    are unknown (``restricted`` None, ``scheme`` None) and the caller's trust in the key must come from
    elsewhere (a pin or a certificate).
    """

    key: AkKey
    source: str  # "tpm2b_public" | "tpmt_public" | "spki_pem" | "spki_der" | "jwk" | "key"
    spki_der: bytes
    tpm_public: TpmPublic | None = None

    @cached_property  # keys are memoized by their bytes (load_ak_public): computed once per key, not per quote
    def spki_sha256(self) -> str:
        """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo: the AK's pin value."""
        return hashlib.sha256(self.spki_der).hexdigest()

    @property
    def key_type(self) -> str:
        return "rsa" if isinstance(self.key, rsa.RSAPublicKey) else "ecc"

    @property
    def restricted(self) -> bool | None:
        if self.tpm_public is None:
            return None
        return bool(self.tpm_public.attributes & ATTR_RESTRICTED) and bool(self.tpm_public.attributes & ATTR_SIGN)

    @property
    def scheme(self) -> tuple[int, int] | None:
        """(sigAlg, hashAlg) fixed by the TPMT_PUBLIC, or None when unknown or unrestricted (TPM_ALG_NULL)."""
        tp = self.tpm_public
        if tp is None or tp.scheme == ALG_NULL or tp.scheme_hash is None:
            return None
        return tp.scheme, tp.scheme_hash

    @cached_property
    def name(self) -> bytes | None:
        """TPM Name of the key (nameAlg ‖ H_nameAlg(TPMT_PUBLIC)), when the TPM encoding is known."""
        tp = self.tpm_public
        if tp is None:
            return None
        from .digest import hash_bytes

        return tp.name_alg.to_bytes(2, "big") + hash_bytes(tp.name_alg, tp.raw)


def _spki(key: AkKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _from_tpm_public(tp: TpmPublic, source: str) -> AkPublic:
    key: AkKey
    if tp.type == ALG_RSA:
        if tp.key_bits not in (1024, 2048, 3072, 4096) or len(tp.modulus) * 8 != tp.key_bits:
            raise TPM_AK_UNSUPPORTED(f"RSA AK of {tp.key_bits} bits with a {len(tp.modulus)}-byte modulus")
        try:
            key = rsa.RSAPublicNumbers(tp.exponent, int.from_bytes(tp.modulus, "big")).public_key()
        except ValueError as exc:
            raise TPM_AK_MALFORMED("RSA AK numbers are invalid") from exc
    elif tp.type == ALG_ECC:
        curve = _CURVES.get(tp.curve)
        if curve is None:
            raise TPM_AK_UNSUPPORTED(f"ECC AK curve 0x{tp.curve:04x}")
        try:
            key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(tp.x, "big"), int.from_bytes(tp.y, "big"), curve
            ).public_key()
        except ValueError as exc:
            raise TPM_AK_MALFORMED("ECC AK point is not on the curve") from exc
    else:  # pragma: no cover - parse_tpmt_public admits only RSA/ECC
        raise TPM_AK_UNSUPPORTED("AK type")
    return AkPublic(key, source, _spki(key), tp)


def _b64url_int(value: Any, field: str) -> int:
    if not isinstance(value, str) or not value:
        raise TPM_AK_MALFORMED(f"JWK {field} is not a base64url string")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TPM_AK_MALFORMED(f"JWK {field} is not base64url") from exc
    return int.from_bytes(raw, "big")


def _from_jwk(jwk: Mapping[str, Any]) -> AkPublic:
    kty = jwk.get("kty")
    key: AkKey
    try:
        if kty == "RSA":
            key = rsa.RSAPublicNumbers(_b64url_int(jwk.get("e"), "e"), _b64url_int(jwk.get("n"), "n")).public_key()
        elif kty == "EC":
            curve = _JWK_CURVES.get(str(jwk.get("crv")))
            if curve is None:
                raise TPM_AK_UNSUPPORTED("JWK curve")
            key = ec.EllipticCurvePublicNumbers(
                _b64url_int(jwk.get("x"), "x"), _b64url_int(jwk.get("y"), "y"), curve
            ).public_key()
        else:
            raise TPM_AK_UNSUPPORTED(f"JWK kty {kty!r}")
    except ValueError as exc:
        raise TPM_AK_MALFORMED("JWK numbers are invalid") from exc
    return AkPublic(key, "jwk", _spki(key))


def _from_loaded(key: object, source: str) -> AkPublic:
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return AkPublic(key, source, _spki(key))
    raise TPM_AK_UNSUPPORTED("AK is neither RSA nor EC")


def load_ak_public(data: bytes | str | Mapping[str, Any] | AkKey | AkPublic) -> AkPublic:
    """Load an AK public key, recognising the encoding by content.

    Accepts TPM2B_PUBLIC or TPMT_PUBLIC bytes, PEM (``PUBLIC KEY``) or DER SubjectPublicKeyInfo, a JWK (dict,
    JSON text or bytes), a ``cryptography`` RSA/EC public key, or an :class:`AkPublic` (returned as is).
    Raises TPM_AK_MALFORMED / TPM_AK_UNSUPPORTED.
    """
    if isinstance(data, AkPublic):
        return data
    if isinstance(data, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return _from_loaded(data, "key")
    if isinstance(data, Mapping):
        return _from_jwk(data)
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if len(raw) > _MEMO_MAX_BYTES:
        return _load_bytes(raw)
    return _BY_BYTES.get(raw, lambda: _load_bytes(raw))


# Keys loaded from bytes, by those exact bytes: building the key object (an OpenSSL key from the modulus, and its
# SPKI re-encoding) was the costliest step of reading a go-tpm-tools AK, which a machine sends unchanged with every
# attestation. Only the parse is memoized (the result is immutable); every check on the key stays with the caller
# and failures are never memoized.
_BY_BYTES = LruMemo(256)
_MEMO_MAX_BYTES = 4096  # an RSA-4096 TPMT_PUBLIC is under 600 bytes, its PEM under 1 KiB: bigger inputs are not kept


def _load_bytes(raw: bytes) -> AkPublic:
    stripped = raw.lstrip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            return _from_loaded(serialization.load_pem_public_key(stripped), "spki_pem")
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise TPM_AK_MALFORMED("PEM is not a public key") from exc
    if stripped.startswith(b"{"):
        jwk = jsonlimits.loads(stripped, TPM_AK_MALFORMED, "AK JSON")
        if not isinstance(jwk, dict):
            raise TPM_AK_MALFORMED("AK JSON is not a JWK object")
        return _from_jwk(jwk)
    if raw[:1] == b"\x30":
        try:
            return _from_loaded(serialization.load_der_public_key(raw), "spki_der")
        except (ValueError, UnsupportedAlgorithm):
            pass  # fall through: may still be a TPM2B_PUBLIC whose size byte is 0x30
    if looks_like_tpm_public(raw):
        first = int.from_bytes(raw[:2], "big")
        if first in (ALG_RSA, ALG_ECC):
            return _from_tpm_public(parse_tpmt_public(raw), "tpmt_public")
        return _from_tpm_public(parse_tpm2b_public(raw), "tpm2b_public")
    raise TPM_AK_MALFORMED("AK is not TPM2B_PUBLIC, TPMT_PUBLIC, SPKI (PEM/DER) or JWK")
