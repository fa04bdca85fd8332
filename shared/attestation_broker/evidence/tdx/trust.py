"""Trust anchors for TDX: the pinned Intel SGX Root CA and Intel SGX TCB Signing certificate.

Both are package data under ``attestation_broker/trust/roots/intel/`` with a ``MANIFEST.json`` (sha256, source),
loaded through :mod:`attestation_broker.trust.roots` (a file whose digest differs from its manifest is refused).
Tests may build a :class:`TdxTrust` from a generated root; production always uses :func:`intel_trust`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.trust.roots import root_certificates

ROOT_FILE = "trusted_root.pem"
TCB_SIGNING_FILE = "intel_sgx_tcb_signing.pem"


@dataclass(frozen=True)
class TdxTrust:
    """The root every chain must end in, and the certificate that signs TCB info / QE identity."""

    root: x509.Certificate
    tcb_signing: x509.Certificate

    @property
    def root_der(self) -> bytes:
        return _der(self.root)


@cache
def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _single(name: str) -> x509.Certificate:
    certs = root_certificates("intel", name)
    if len(certs) != 1:
        raise CONFIG_INVALID(f"intel/{name} must hold exactly one certificate")
    return certs[0]


@cache
def intel_trust() -> TdxTrust:
    return TdxTrust(root=_single(ROOT_FILE), tcb_signing=_single(TCB_SIGNING_FILE))
