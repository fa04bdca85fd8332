"""Device-side checks of an NVIDIA attestation report (NVIDIA "Confidential Computing Deployment Guide",
GPU attestation; DMTF DSP0274 1.1 §10.11 for the signed transcript):

* the device certificate chain (PEM, leaf first) ends at the pinned NVIDIA Device Identity CA; a root copy
  carried at its end must be the pinned root byte for byte. The path is built and checked by the shared
  builder (:func:`attestation_broker.trust.chain.verify_path`, cryptography's verifier with the broker's
  explicit policies, as for TDX, Nitro, gcp-vtpm and gcp-token): every certificate valid at ``now`` with the
  configured clock skew, every CA with basicConstraints cA and keyUsage keyCertSign, path length constraints,
  at most :data:`MAX_DEPTH` certificates (NVIDIA's fixed five-level hierarchy: FMC leaf, BROM, provisioner ICA,
  identity CA, root), a leaf that is not a CA. The real Hopper, Blackwell and NVSwitch chains pass these rules
  unrelaxed (checked on every vector in tests/vectors/nvidia); the one deliberate difference from the other
  kinds is only the tolerated root copy at the end of the PEM, which NVIDIA's tools always append. Device
  certificates end at 9999-12-31, which the shared validity check compares without overflow;
* the report signature: ECDSA P-384 / SHA-384 over request ‖ response up to the signature, with the
  key of the chain's first certificate (the "GSP/FSP FMC LF" leaf);
* the FWID: opaque field 20 equals ``fwids[0].digest`` of the leaf's DICE TcbInfo extension (TCG DICE
  Attestation Architecture §6.1.1: ``tcg-dice-TcbInfo`` 2.23.133.5.4.1 on Hopper; Blackwell leaves
  carry it under 2.23.133.5.4.1.1; Hopper leaves use their own layout under the DICE OID, see
  :func:`_parse_fwids`). Reports without field 20 (older Hopper firmware) skip the check,
  as NVIDIA's verifier does, and say so in the verifier claims.

DER of the TcbInfo extension is read with a minimal TLV reader: ``cryptography`` exposes unknown
extensions only as bytes.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestation_broker.errors import CERT_CHAIN_INVALID
from attestation_broker.evidence.common import ecdsa_der_signature
from attestation_broker.trust.chain import verify_path
from attestation_broker.trust.x509 import load_certificates

from .abi import FIELD_FWID, Report
from .errors import NVIDIA_FWID_MISMATCH, NVIDIA_REPORT_SIGNATURE_INVALID
from .trust import fingerprint

TCB_INFO_OIDS = (
    x509.ObjectIdentifier("2.23.133.5.4.1"),  # tcg-dice-TcbInfo (Hopper)
    x509.ObjectIdentifier("2.23.133.5.4.1.1"),  # as carried by Blackwell leaves
)
MAX_CHAIN = 8  # certificates a device PEM may hold at all (the root copy included)
MAX_DEPTH = 5  # leaf, BROM, provisioner ICA, identity CA, root


@dataclass(frozen=True)
class DeviceChain:
    """A verified chain: ``certificates`` leaf first, without the root; ``root`` the pinned anchor."""

    certificates: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def path(self) -> tuple[x509.Certificate, ...]:
        """Leaf first, the pinned root last."""
        return (*self.certificates, self.root)

    def issuer_of(self, index: int) -> x509.Certificate:
        return self.certificates[index + 1] if index + 1 < len(self.certificates) else self.root


def load_chain(pem: bytes) -> tuple[x509.Certificate, ...]:
    """Every certificate fully decoded (trust/x509.py), so later checks never meet a lazy-parse error."""
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise CERT_CHAIN_INVALID("the device certificate chain is not PEM certificates")
    certs = load_certificates(pem, CERT_CHAIN_INVALID, "the device certificate chain")
    if not certs or len(certs) > MAX_CHAIN:
        raise CERT_CHAIN_INVALID("the device certificate chain is empty or too long")
    return certs


def below_root(
    certs: tuple[x509.Certificate, ...], root: x509.Certificate, *, what: str
) -> tuple[x509.Certificate, ...]:
    """``certs`` without a trailing copy of ``root`` (which must then be the pinned root byte for byte)."""
    body = list(certs)
    if body and body[-1].subject == root.subject and body[-1].issuer == root.subject:
        if fingerprint(body[-1]) != fingerprint(root):
            raise CERT_CHAIN_INVALID(f"the {what} chain ends at a root other than the pinned one")
        body.pop()
    if not body:
        raise CERT_CHAIN_INVALID(f"the {what} chain holds no certificate below the root")
    return tuple(body)


def verify_chain(
    certs: tuple[x509.Certificate, ...], root: x509.Certificate, *, now: datetime, skew: timedelta, what: str
) -> DeviceChain:
    """The device chain built and checked by the shared path builder (memoized there by the exact bytes)."""
    body = below_root(certs, root, what=what)
    path = verify_path(body[0], body[1:], [root], now=now, skew=skew, max_depth=MAX_DEPTH, what=f"the {what} chain")
    return DeviceChain(tuple(path[:-1]), path[-1])


def verify_report_signature(report: Report, leaf: x509.Certificate) -> None:
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise NVIDIA_REPORT_SIGNATURE_INVALID("the device leaf key is not ECDSA P-384")
    try:
        key.verify(ecdsa_der_signature(report.signature, 48), report.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise NVIDIA_REPORT_SIGNATURE_INVALID() from None


# --- DICE TcbInfo -------------------------------------------------------------------------------------


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the DER TLV at ``pos``."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag = data[pos]
    length = data[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3 or start + count > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated")
    return tag, start, end


def tcb_info_fwids(leaf: x509.Certificate) -> tuple[tuple[str, bytes], ...] | None:
    """FWID digests of the leaf's DICE TcbInfo extension (OID, digest), or None when it has none."""
    for oid in TCB_INFO_OIDS:
        try:
            ext = leaf.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            continue
        raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
        try:
            return _parse_fwids(raw, oid.dotted_string)
        except ValueError:
            raise NVIDIA_FWID_MISMATCH("the leaf's DICE TcbInfo extension is not valid DER") from None
    return None


def _fwid(raw: bytes, start: int, end: int) -> bytes | None:
    """The digest of ``FWID ::= SEQUENCE { hashAlg OID, digest OCTET STRING }`` at raw[start:end], else None."""
    atag, _astart, aend = _tlv(raw, start)
    if atag != 0x06 or aend >= end:
        return None
    dtag, dstart, dend = _tlv(raw, aend)
    return raw[dstart:dend] if dtag == 0x04 and dend == end else None


def _parse_fwids(raw: bytes, oid: str) -> tuple[tuple[str, bytes], ...]:
    """FWIDs of either layout NVIDIA uses: Blackwell's DiceTcbInfo (``fwids [6] IMPLICIT SEQUENCE OF
    FWID``), or Hopper's ``SEQUENCE { INTEGER version, SubjectPublicKeyInfo, FWID }`` under the same OID."""
    tag, start, end = _tlv(raw, 0)
    if tag != 0x30 or end != len(raw):
        raise ValueError("TcbInfo is not one SEQUENCE")
    found: list[tuple[str, bytes]] = []
    pos = start
    while pos < end:
        ftag, fstart, fend = _tlv(raw, pos)
        if ftag == 0xA6:
            inner = fstart
            while inner < fend:
                stag, sstart, send = _tlv(raw, inner)
                digest = _fwid(raw, sstart, send) if stag == 0x30 else None
                if digest is None:
                    raise ValueError("fwids holds something other than FWIDs")
                found.append((oid, digest))
                inner = send
        elif ftag == 0x30:
            digest = _fwid(raw, fstart, fend)
            if digest is not None:
                found.append((oid, digest))
        pos = fend
    return tuple(found)


@dataclass(frozen=True)
class FwidResult:
    status: str  # "match" | "absent-in-report"
    oid: str | None


def check_fwid(report: Report, leaf: x509.Certificate) -> FwidResult:
    reported = report.opaque_value(FIELD_FWID)
    if reported is None:
        return FwidResult("absent-in-report", None)
    fwids = tcb_info_fwids(leaf)
    if not fwids:
        raise NVIDIA_FWID_MISMATCH("the report carries an FWID but the leaf has no DICE TcbInfo FWID")
    oid, digest = fwids[0][0], fwids[0][1]
    if not hmac.compare_digest(reported, digest):
        raise NVIDIA_FWID_MISMATCH()
    return FwidResult("match", oid)
