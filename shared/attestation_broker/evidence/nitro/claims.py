"""Normalize a verified Nitro document into the broker claim schema, and derive ``cnf``.

attester_claims: ``tee`` nitro, ``platform`` aws, ``measurement`` = PCR0 (hex), ``dbgstat``,
``instance`` (module_id, parent EC2 instance, region from the leaf CN), and ``nitro`` raw fields
(module_id, timestamp ms, digest, pcrs {"index": hex}, user_data / nonce / public_key hex,
public_key_sha256, certificate serial / subject / validity). Nitro has no TCB version and no
REPORT_DATA, so ``tcb`` and ``report_data`` are absent; the binding lives in ``nitro.nonce``.

``cnf`` (RFC 7800): when ``public_key`` parses as a SubjectPublicKeyInfo (DER, or PEM) of a key type
JWK can express (EC P-256/384/521/secp256k1, RSA, Ed25519/Ed448/X25519/X448), ``{"jwk": ...}``.
Otherwise there is no ``cnf``: the bytes are only reported, with their SHA-256 in
``nitro.public_key_sha256`` (an ``x5t#S256`` would claim a certificate, which this is not).
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .abi import AttestationDocument
from .checks import VerifiedDocument

# Leaf CN: "<module_id>.<region>.aws"; module_id: "i-<parent instance>-enc<enclave>".
_LEAF_CN = re.compile(r"^(?P<module>[^.]+)\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.aws$")
_MODULE_ID = re.compile(r"^(?P<instance>i-[0-9a-f]+)-enc[0-9a-f]+$")


def public_key_jwk(public_key: bytes) -> dict[str, Any] | None:
    """The attested key as a JWK, or None when it is not a JWK-expressible SubjectPublicKeyInfo."""
    try:
        if public_key.lstrip().startswith(b"-----BEGIN PUBLIC KEY-----"):
            key = serialization.load_pem_public_key(public_key)
        else:
            key = serialization.load_der_public_key(public_key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            return dict(ECAlgorithm.to_jwk(key, as_dict=True))
        if isinstance(key, rsa.RSAPublicKey):
            return dict(RSAAlgorithm.to_jwk(key, as_dict=True))
        if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            return dict(OKPAlgorithm.to_jwk(key, as_dict=True))
        if isinstance(key, x25519.X25519PublicKey | x448.X448PublicKey):
            # RFC 8037 §2: OKP with the raw public key; PyJWT only exports the signature curves.
            curve = "X25519" if isinstance(key, x25519.X25519PublicKey) else "X448"
            raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return {"kty": "OKP", "crv": curve, "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}
    except (ValueError, TypeError, NotImplementedError):  # e.g. an EC curve JWK has no name for
        return None
    return None


def key_confirmation(document: AttestationDocument) -> tuple[dict[str, Any] | None, str]:
    """(cnf, how): how is "jwk", "unparsable" or "absent" for verifier claims."""
    if document.public_key is None:
        return None, "absent"
    jwk = public_key_jwk(document.public_key)
    if jwk is None:
        return None, "unparsable"
    return {"jwk": jwk}, "jwk"


@lru_cache(maxsize=1024)
def _describe(cert: x509.Certificate) -> tuple[str, str, str]:
    """(subject RFC 4514, not_before ISO, not_after ISO); memoized: RFC 4514 rendering dominates claim cost."""
    return cert.subject.rfc4514_string(), cert.not_valid_before_utc.isoformat(), cert.not_valid_after_utc.isoformat()


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def attester_claims(verified: VerifiedDocument, *, debug: bool) -> dict[str, Any]:
    doc = verified.document
    leaf = verified.chain.leaf
    leaf_subject, leaf_not_before, leaf_not_after = _describe(leaf)
    nitro: dict[str, Any] = {
        "module_id": doc.module_id,
        "timestamp": doc.timestamp_ms,
        "digest": doc.digest,
        "pcrs": {str(index): value.hex() for index, value in doc.pcrs.items()},
        "user_data": _hex(doc.user_data),
        "nonce": _hex(doc.nonce),
        "public_key": _hex(doc.public_key),
        "public_key_sha256": None if doc.public_key is None else hashlib.sha256(doc.public_key).hexdigest(),
        "certificate": {
            "serial": format(leaf.serial_number, "x"),
            "subject": leaf_subject,
            "not_before": leaf_not_before,
            "not_after": leaf_not_after,
        },
    }
    instance: dict[str, Any] = {"id": doc.module_id}
    module = _MODULE_ID.match(doc.module_id)
    if module:
        instance["vm_id"] = module["instance"]
    common_names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = common_names[0].value if common_names else ""
    where = _LEAF_CN.match(cn) if isinstance(cn, str) else None
    if where and where["module"] == doc.module_id:
        instance["region"] = where["region"]
    return {
        "tee": "nitro",
        "platform": "aws",
        "measurement": doc.pcrs[0].hex(),
        "dbgstat": "enabled" if debug else "disabled",
        "instance": instance,
        "nitro": nitro,
    }


def verifier_claims(verified: VerifiedDocument, *, public_key: str) -> dict[str, Any]:
    chain = verified.chain
    collateral = [
        {
            "type": "certificate",
            "subject": subject,
            "issued": issued,
            "next_update": expires,
            "source": "evidence",
            "stale": False,
        }
        for subject, issued, expires in (_describe(cert) for cert in (*chain.intermediates, chain.leaf))
    ]
    return {
        "evidence_kind": "nitro",
        "collateral": collateral,
        "bindings": {"nonce": "checked" if verified.nonce_checked else "not-requested"},
        "root": {
            "subject": _describe(chain.root.certificate)[0],
            "sha256": chain.root.fingerprint,
            "source": "pinned",
        },
        "signing_key": "nitro-enclave-certificate",
        "public_key": public_key,
    }
