"""The AWS Nitro Enclaves root G1, pinned twice: by file digest (MANIFEST.json) and by DER fingerprint.

AWS publishes the root at https://aws-nitro-enclaves.amazonaws.com/AWS_NitroEnclaves_Root-G1.zip and
documents its SHA-256 fingerprint in "Verifying the root of trust" (Nitro Enclaves User Guide). The
fingerprint is a constant here as well as in the manifest so that a root file and manifest replaced
together still cannot change the anchor. The root carried in a document's cabundle is only ever
compared with this one, never trusted. The file is read through :mod:`attestation_broker.trust.roots`, which
refuses it unless its SHA-256 matches the manifest entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.trust.roots import manifest, root_certificates

VENDOR = "aws"
ROOT_G1_FILE = "aws-nitro-enclaves-root-g1.pem"
# SHA-256 over the DER of CN=aws.nitro-enclaves, as published by AWS.
ROOT_G1_FINGERPRINT = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"


@dataclass(frozen=True)
class TrustAnchor:
    """A root certificate that cabundle[0] must equal byte for byte."""

    der: bytes
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> TrustAnchor:
        return cls(der=certificate.public_bytes(Encoding.DER), certificate=certificate)


@cache
def aws_nitro_root() -> TrustAnchor:
    certificates = root_certificates(VENDOR, ROOT_G1_FILE)  # checks the file's SHA-256 against the manifest
    if len(certificates) != 1:
        raise CONFIG_INVALID(f"{VENDOR}/{ROOT_G1_FILE} must hold exactly one certificate")
    anchor = TrustAnchor.from_certificate(certificates[0])
    entry = manifest(VENDOR)[ROOT_G1_FILE]
    if anchor.fingerprint != ROOT_G1_FINGERPRINT or entry.get("fingerprint_sha256") != ROOT_G1_FINGERPRINT:
        raise CONFIG_INVALID(f"{VENDOR}/{ROOT_G1_FILE} is not the AWS-documented Nitro root G1")
    return anchor
