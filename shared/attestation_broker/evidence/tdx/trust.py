"""Trust anchor for TDX: the pinned Intel SGX Root CA (and nothing else).

The root is package data under ``attestation_broker/trust/roots/intel/`` with a ``MANIFEST.json`` (sha256, source),
loaded through :mod:`attestation_broker.trust.roots` (a file whose digest differs from its manifest is refused), and
its DER fingerprint is also pinned here in code, so changing the root needs a code change as well as new data.

Intel's TCB Signing certificate is deliberately *not* pinned: it travels with the collateral it signs (the PCS
``TCB-Info-Issuer-Chain`` / ``SGX-Enclave-Identity-Issuer-Chain`` headers, dcap-qvl ``*_issuer_chain``) and is
verified to this root and the root CRL on every use, so an Intel rotation of that certificate needs no release
(docs/collateral.md "Issuer chains"). Tests may build a :class:`TdxTrust` from a generated root; production
always uses :func:`intel_trust`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache, cached_property

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.trust.roots import root_certificates

ROOT_FILE = "trusted_root.pem"
# SHA-256 of the Intel SGX Root CA certificate (DER), as Intel publishes it; also in the roots MANIFEST.json.
INTEL_SGX_ROOT_CA_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"


@dataclass(frozen=True)
class TdxTrust:
    """The root every chain (PCK chain, TCB Signing chain, root CRL) must end in."""

    root: x509.Certificate

    @cached_property
    def root_der(self) -> bytes:
        # Once per trust object: a memo keyed by the certificate re-hashed its DER on every quote.
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
    root = _single(ROOT_FILE)
    if hashlib.sha256(_der(root)).hexdigest() != INTEL_SGX_ROOT_CA_SHA256:
        raise CONFIG_INVALID("intel/trusted_root.pem is not the Intel SGX Root CA pinned in code")
    return TdxTrust(root=root)
