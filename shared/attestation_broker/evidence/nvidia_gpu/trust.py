"""The NVIDIA roots, pinned twice: by file digest (trust/roots/nvidia/MANIFEST.json) and by DER fingerprint.

* NVIDIA Device Identity CA: the anchor of GPU and NVSwitch device certificate chains.
* NVIDIA CoRIM signing Root CA: the anchor of RIM (reference integrity manifest) signer chains.

Both are shipped by NVIDIA's nvtrust local verifier; the fingerprints are constants here as well as in
the manifest so that a root file and manifest replaced together still cannot change an anchor. A root
carried in evidence (the device chain's fifth certificate) is only compared with the pinned one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.trust.roots import manifest, root_certificates

VENDOR = "nvidia"
DEVICE_ROOT_FILE = "nvidia_device_identity_ca.pem"
DEVICE_ROOT_FINGERPRINT = "102bf659d5419614c9d8e6aecebc80454eb26b1df6a769ac720b9a690b167b48"
RIM_ROOT_FILE = "nvidia_corim_signing_root_ca.pem"
RIM_ROOT_FINGERPRINT = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1"


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def _pinned(name: str, expected: str) -> x509.Certificate:
    certificates = root_certificates(VENDOR, name)  # checks the file's SHA-256 against the manifest
    if len(certificates) != 1:
        raise CONFIG_INVALID(f"{VENDOR}/{name} must hold exactly one certificate")
    cert = certificates[0]
    if fingerprint(cert) != expected or manifest(VENDOR)[name].get("fingerprint_sha256") != expected:
        raise CONFIG_INVALID(f"{VENDOR}/{name} is not the pinned NVIDIA root")
    return cert


@cache
def device_root() -> x509.Certificate:
    return _pinned(DEVICE_ROOT_FILE, DEVICE_ROOT_FINGERPRINT)


@cache
def rim_root() -> x509.Certificate:
    return _pinned(RIM_ROOT_FILE, RIM_ROOT_FINGERPRINT)


@dataclass(frozen=True)
class NvidiaRoots:
    """The two anchors a verification uses; production always takes the pinned ones (tests inject)."""

    device: x509.Certificate
    rim: x509.Certificate

    @classmethod
    def pinned(cls) -> NvidiaRoots:
        return cls(device_root(), rim_root())
