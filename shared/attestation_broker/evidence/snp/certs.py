"""AMD certificates and CRLs as supplied with SNP evidence (AMD KDS spec #57230 "Versioned Chip/Loaded
Endorsement Key Certificates": VCEK/VLEK X.509 extensions under OID 1.3.6.1.4.1.3704.1).

Recognizes certificates and CRLs by content (PEM blocks or DER; certificate-table entries), sorts
them into endorsement-key leaves (EC P-384: VCEK or VLEK) and RSA intermediates (ASK/ASVK/ARK), and
decodes the AMD extensions of a leaf. Parsing is memoized by exact DER bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attestation_broker.evidence.common import load_der_certificate
from attestation_broker.evidence.snp.abi import PRODUCTS, CertTableEntry, looks_like_cert_table, parse_cert_table
from attestation_broker.evidence.snp.errors import SNP_CERTIFICATE_MALFORMED

_AMD = "1.3.6.1.4.1.3704.1"
OID_STRUCT_VERSION = f"{_AMD}.1"
OID_PRODUCT_NAME = f"{_AMD}.2"
OID_BL_SPL = f"{_AMD}.3.1"
OID_TEE_SPL = f"{_AMD}.3.2"
OID_SNP_SPL = f"{_AMD}.3.3"
OID_UCODE_SPL = f"{_AMD}.3.8"
OID_FMC_SPL = f"{_AMD}.3.9"  # Turin (struct version 1) only
OID_HWID = f"{_AMD}.4"
OID_CSP_ID = f"{_AMD}.5"

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


@dataclass(frozen=True)
class LeafInfo:
    """The AMD extensions of a VCEK or VLEK certificate."""

    kind: str  # "vcek" | "vlek"
    struct_version: int
    product_name: str  # e.g. "Milan-B0", "Genoa", "Turin"
    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None
    hwid: bytes | None  # VCEK only (64 bytes; 8 bytes on Turin)
    csp_id: str | None  # VLEK only

    @property
    def product(self) -> str | None:
        base = self.product_name.split("-", 1)[0]
        return base if base in PRODUCTS else None


@dataclass(frozen=True)
class SuppliedCert:
    der: bytes
    cert: x509.Certificate


@dataclass(frozen=True)
class Supplied:
    """Everything AMD-shaped that came with the evidence, sorted by role."""

    leaves: tuple[tuple[SuppliedCert, LeafInfo], ...]
    intermediates: tuple[SuppliedCert, ...]  # RSA certs: ASK/ASVK/ARK candidates (never trusted as roots)
    crls: tuple[bytes, ...]  # DER


def _der_int(value: bytes) -> int:
    # DER INTEGER with a short-form length: 02 len big-endian-bytes.
    if len(value) < 3 or value[0] != 0x02 or value[1] != len(value) - 2 or value[1] > 8:
        raise SNP_CERTIFICATE_MALFORMED("AMD SPL extension is not a small DER INTEGER")
    return int.from_bytes(value[2:], "big", signed=True)


def _der_ia5(value: bytes) -> str:
    if len(value) < 2 or value[0] != 0x16 or value[1] != len(value) - 2:
        raise SNP_CERTIFICATE_MALFORMED("AMD string extension is not a short DER IA5String")
    return value[2:].decode("ascii", errors="replace")


def _raw_extensions(cert: x509.Certificate) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for ext in cert.extensions:
        if isinstance(ext.value, x509.UnrecognizedExtension):
            out[ext.oid.dotted_string] = ext.value.value
    return out


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate (memoized by exact bytes)."""
    try:
        return load_der_certificate(der)
    except ValueError:
        raise SNP_CERTIFICATE_MALFORMED("a supplied certificate is not valid DER X.509") from None


@lru_cache(maxsize=512)
def leaf_info(der: bytes) -> LeafInfo:
    """Decode the AMD extensions of a VCEK/VLEK (hwID → VCEK, cspID → VLEK)."""
    cert = load_certificate(der)
    ext = _raw_extensions(cert)
    if OID_HWID in ext:
        kind = "vcek"
    elif OID_CSP_ID in ext:
        kind = "vlek"
    else:
        raise SNP_CERTIFICATE_MALFORMED("endorsement certificate has neither hwID nor cspID extension")
    required = (OID_BL_SPL, OID_TEE_SPL, OID_SNP_SPL, OID_UCODE_SPL)
    if any(oid not in ext for oid in required):
        raise SNP_CERTIFICATE_MALFORMED("endorsement certificate lacks TCB SPL extensions")
    hwid = ext.get(OID_HWID)
    if hwid is not None and len(hwid) in (10, 66) and hwid[0] == 0x04 and hwid[1] == len(hwid) - 2:
        hwid = hwid[2:]  # tolerate an OCTET STRING wrapper around the raw hwID
    return LeafInfo(
        kind=kind,
        struct_version=_der_int(ext[OID_STRUCT_VERSION]) if OID_STRUCT_VERSION in ext else 0,
        product_name=_der_ia5(ext[OID_PRODUCT_NAME]) if OID_PRODUCT_NAME in ext else "",
        bootloader=_der_int(ext[OID_BL_SPL]),
        tee=_der_int(ext[OID_TEE_SPL]),
        snp=_der_int(ext[OID_SNP_SPL]),
        microcode=_der_int(ext[OID_UCODE_SPL]),
        fmc=_der_int(ext[OID_FMC_SPL]) if OID_FMC_SPL in ext else None,
        hwid=hwid,
        csp_id=_der_ia5(ext[OID_CSP_ID]) if OID_CSP_ID in ext else None,
    )


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            raise SNP_CERTIFICATE_MALFORMED("a PEM block is not valid base64") from None
        blocks.append((match.group(1).decode(), der))
    return blocks


def _is_crl(der: bytes) -> bool:
    try:
        x509.load_der_x509_crl(der)
    except ValueError:
        return False
    return True


def classify(blobs: Iterable[bytes], table: Iterable[CertTableEntry] = ()) -> Supplied:
    """Sort PEM/DER certificates, DER/PEM CRLs and certificate tables by role.

    Raises SNP_CERTIFICATE_MALFORMED for a blob that is none of these."""
    certs: list[bytes] = []
    crls: list[bytes] = []
    pending = list(blobs)
    entries = list(table)
    for blob in pending:
        if b"-----BEGIN" in blob[:4096]:
            blocks = _pem_blocks(blob)
            if not blocks:
                raise SNP_CERTIFICATE_MALFORMED("PEM input without a complete block")
            for label, der in blocks:
                if label == "CERTIFICATE":
                    certs.append(der)
                elif label == "X509 CRL":
                    crls.append(der)
        elif looks_like_cert_table(blob):
            entries.extend(parse_cert_table(blob))
        elif blob[:1] == b"\x30":
            try:
                load_certificate(blob)
                certs.append(blob)
            except Exception:  # noqa: BLE001 - not a certificate: try a CRL before failing
                if not _is_crl(blob):
                    raise SNP_CERTIFICATE_MALFORMED("DER input is neither a certificate nor a CRL") from None
                crls.append(blob)
        else:
            raise SNP_CERTIFICATE_MALFORMED("input is not a PEM/DER certificate, CRL or certificate table")
    for entry in entries:
        if entry.role != "unknown":
            certs.append(entry.data)
    leaves: list[tuple[SuppliedCert, LeafInfo]] = []
    intermediates: list[SuppliedCert] = []
    seen: set[bytes] = set()
    for der in certs:
        if der in seen:
            continue
        seen.add(der)
        cert = load_certificate(der)
        item = SuppliedCert(der, cert)
        if isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
            leaves.append((item, leaf_info(der)))
        else:
            intermediates.append(item)
    return Supplied(tuple(leaves), tuple(intermediates), tuple(crls))


def is_certificate(blob: bytes) -> bool:
    """An extra file holding certificates: PEM with a CERTIFICATE block, or one DER certificate."""
    if b"-----BEGIN CERTIFICATE-----" in blob:
        return True
    if blob[:1] != b"\x30":
        return False
    try:
        load_certificate(blob)
    except Exception:  # noqa: BLE001 - not a certificate
        return False
    return True


def is_crl(blob: bytes) -> bool:
    """An extra file holding a CRL (PEM or DER) and no certificate."""
    if b"-----BEGIN X509 CRL-----" in blob:
        return b"-----BEGIN CERTIFICATE-----" not in blob
    return blob[:1] == b"\x30" and not is_certificate(blob) and _is_crl(blob)
