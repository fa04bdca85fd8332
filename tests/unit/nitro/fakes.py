"""Test-only Nitro PKI and document builder: a generated P-384 root → intermediate → leaf, ES384 COSE_Sign1.

Nothing here is trusted by production code; tests hand the generated root to ``NitroVerifier(anchor=...)``
to exercise the full pipeline on correctly signed documents, and use it as a wrong root elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import cbor2
from attestation_broker.evidence.nitro.trust import TrustAnchor
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Only"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def make_cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    path_length: int | None = None,
    not_before: datetime,
    not_after: datetime,
    hash_alg: hashes.SHA256 | hashes.SHA384 | None = None,
    key_cert_sign: bool | None = None,
) -> x509.Certificate:
    sign = ca if key_cert_sign is None else key_cert_sign
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=sign,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key, hash_alg or hashes.SHA384())


@dataclass(frozen=True)
class FakePki:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    inter_key: ec.EllipticCurvePrivateKey
    inter: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @property
    def anchor(self) -> TrustAnchor:
        return TrustAnchor.from_certificate(self.root)

    def bundle(self) -> list[bytes]:
        return [der(self.root), der(self.inter)]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def p384() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@cache
def fake_pki() -> FakePki:
    root_key, inter_key, leaf_key = p384(), p384(), p384()
    root = make_cert(
        "test-only nitro root",
        root_key,
        "test-only nitro root",
        root_key,
        ca=True,
        not_before=T0 - timedelta(days=365),
        not_after=T0 + timedelta(days=3650),
    )
    inter = make_cert(
        "test-only nitro intermediate",
        inter_key,
        "test-only nitro root",
        root_key,
        ca=True,
        path_length=0,
        not_before=T0 - timedelta(days=1),
        not_after=T0 + timedelta(days=5),
    )
    leaf = make_cert(
        "i-0123456789abcdef0-enc0123456789abcdef.eu-west-1.aws",
        leaf_key,
        "test-only nitro intermediate",
        inter_key,
        ca=False,
        not_before=T0 - timedelta(minutes=1),
        not_after=T0 + timedelta(hours=3),
    )
    return FakePki(root_key, root, inter_key, inter, leaf_key, leaf)


def with_leaf(pki: FakePki, leaf: x509.Certificate, leaf_key: ec.EllipticCurvePrivateKey) -> FakePki:
    return replace(pki, leaf=leaf, leaf_key=leaf_key)


def payload(pki: FakePki, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "module_id": "i-0123456789abcdef0-enc0123456789abcdef",
        "digest": "SHA384",
        "timestamp": T0_MS,
        "pcrs": {i: bytes([i + 1]) * 48 for i in range(16)},
        "certificate": der(pki.leaf),
        "cabundle": pki.bundle(),
        "public_key": None,
        "user_data": None,
        "nonce": None,
    }
    for key, value in overrides.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


_DROP = object()
DROP: Any = _DROP


def es384_raw(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA384())))
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


def sign_document(
    signing_key: ec.EllipticCurvePrivateKey,
    payload_bytes: bytes,
    *,
    protected: bytes = b"\xa1\x01\x38\x22",
    unprotected: Mapping[Any, Any] | None = None,
) -> bytes:
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload_bytes])
    signature = es384_raw(signing_key, sig_structure)
    return bytes(cbor2.dumps([protected, dict(unprotected or {}), payload_bytes, signature]))


def build_document(pki: FakePki | None = None, **overrides: Any) -> bytes:
    pki = pki or fake_pki()
    return sign_document(pki.leaf_key, bytes(cbor2.dumps(payload(pki, **overrides))))
