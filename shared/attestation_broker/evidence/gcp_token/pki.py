"""Confidential Space PKI tokens: the x5c chain to the pinned Confidential Space Root CA (RFC 7515 §4.1.6,
RFC 5280 §6.1).

The header's x5c is [leaf, "Confidential Space Intermediate CA", (optionally) "Confidential Space Root CA"].
The path is built and checked by the broker's one path builder (:mod:`attestation_broker.trust.chain`):
every issuer a CA with keyCertSign, the leaf not a CA, every certificate valid at ``now`` within the clock
skew, the path ending at the pinned root. The token signature is then checked with the leaf key. CRLs of
the private CA are not consulted yet (leaves live two months).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from attestation_broker.errors import CERT_CHAIN_INVALID
from attestation_broker.evidence.jose.keys import load_x5c_entry
from attestation_broker.trust.chain import verify_path
from attestation_broker.trust.roots import root_certificates

ROOT_VENDOR = "google/confidential_space"
ROOT_FILE = "confidential-space-root-ca.pem"
MAX_CHAIN = 5


@cache
def pinned_roots() -> tuple[x509.Certificate, ...]:
    """The pinned Confidential Space root(s), checked against the folder's MANIFEST.json SHA-256."""
    return root_certificates(ROOT_VENDOR, ROOT_FILE)


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def verify_x5c(
    x5c: object, now: datetime, skew_seconds: int, roots: tuple[x509.Certificate, ...] | None = None
) -> tuple[rsa.RSAPublicKey, dict[str, Any]]:
    """Verify the x5c chain to the pinned root (or ``roots``, tests only) with the shared path builder
    (:func:`attestation_broker.trust.chain.verify_path`); return the leaf key and a collateral record."""
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN:
        raise CERT_CHAIN_INVALID(f"x5c must be a list of 1..{MAX_CHAIN} certificates")
    certs = [load_x5c_entry(entry) for entry in x5c]
    anchors = roots if roots is not None else pinned_roots()
    path = verify_path(
        certs[0], certs[1:], anchors, now=now, skew=timedelta(seconds=skew_seconds), max_depth=MAX_CHAIN, what="x5c"
    )
    leaf = path[0]
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise CERT_CHAIN_INVALID("x5c leaf key is not RSA-2048 or larger")
    record = {
        "type": "x5c",
        "url": None,
        "subject": _cn(leaf),
        "issuer": _cn(path[1]) if len(path) > 1 else _cn(leaf),
        "root": f"{ROOT_VENDOR}/{ROOT_FILE}",
        "issued": leaf.not_valid_before_utc.isoformat(),
        "next_update": leaf.not_valid_after_utc.isoformat(),
        "source": "evidence",
        "stale": False,
    }
    return key, record
