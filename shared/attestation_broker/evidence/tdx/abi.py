"""Intel TDX DCAP quote layout (v4 and v5).

Implements Intel "TDX DCAP Quote Generation Library and Quote Verification Library" API reference,
Appendix "Quote format": quote header (48 B), TD quote body v4 (TD report 1.0, 584 B), quote v5 body
descriptor (u16 type, u32 size; type 2 = TD report 1.0, type 3 = TD report 1.5, 648 B), ECDSA 256-bit
quote signature data (signature, attestation key, certification data), QE report certification data
(certification data type 6: QE report, its signature, QE authentication data, and the inner
certification data, which must be type 5: the PCK certificate chain in PEM).

All integers are little endian. Parsing follows the length fields inside the structure and ignores
anything after the signature data: real quotes arrive zero-padded or with appended bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from attestation_broker.evidence.tdx.errors import TDX_CERT_DATA_INVALID, TDX_QUOTE_TRUNCATED, TDX_QUOTE_UNSUPPORTED

HEADER_SIZE = 48
TD10_BODY_SIZE = 584
TD15_BODY_SIZE = 648
ENCLAVE_REPORT_SIZE = 384
TEE_TYPE_TDX = 0x81
ATT_KEY_ECDSA_P256 = 2
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
CERT_TYPE_PCK_CHAIN = 5
CERT_TYPE_QE_REPORT = 6
BODY_TYPE_TD10 = 2
BODY_TYPE_TD15 = 3
MAX_QUOTE_BYTES = 64 * 1024

# TD attributes (TDX module ABI, TDINFO_STRUCT.ATTRIBUTES, little-endian u64).
ATTR_DEBUG = 1 << 0
ATTR_SEPT_VE_DISABLE = 1 << 28
ATTR_PKS = 1 << 30
ATTR_KL = 1 << 31
ATTR_PERFMON = 1 << 63


@dataclass(frozen=True)
class QuoteHeader:
    version: int
    att_key_type: int
    tee_type: int
    qe_svn: int
    pce_svn: int
    qe_vendor_id: bytes
    user_data: bytes


@dataclass(frozen=True)
class TdReportBody:
    """TD quote body (TD report 1.0; 1.5 adds ``tee_tcb_svn2`` and ``mr_servicetd``)."""

    tee_tcb_svn: bytes
    mr_seam: bytes
    mr_signer_seam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mr_td: bytes
    mr_config_id: bytes
    mr_owner: bytes
    mr_owner_config: bytes
    rtmrs: tuple[bytes, bytes, bytes, bytes]
    report_data: bytes
    tee_tcb_svn2: bytes | None = None
    mr_servicetd: bytes | None = None

    @property
    def attributes(self) -> int:
        return int.from_bytes(self.td_attributes, "little")

    @property
    def debug(self) -> bool:
        return bool(self.attributes & ATTR_DEBUG)


@dataclass(frozen=True)
class EnclaveReport:
    """SGX REPORT body (the QE report), 384 bytes."""

    raw: bytes
    cpu_svn: bytes
    misc_select: int
    attributes: bytes
    mr_enclave: bytes
    mr_signer: bytes
    isv_prod_id: int
    isv_svn: int
    report_data: bytes


@dataclass(frozen=True)
class Quote:
    """A parsed TDX quote. ``signed`` is exactly the bytes the attestation key signed."""

    header: QuoteHeader
    body_type: int  # 2 = TD report 1.0, 3 = TD report 1.5 (v4 quotes are always 2)
    body: TdReportBody
    signed: bytes
    signature: bytes  # raw r||s, 64 bytes
    attestation_key: bytes  # raw X||Y, 64 bytes
    qe_report: EnclaveReport
    qe_report_signature: bytes
    qe_auth_data: bytes
    pck_chain_pem: bytes
    length: int  # bytes the quote occupies; anything after it in the input is ignored

    @property
    def version(self) -> int:
        return self.header.version


class _Reader:
    def __init__(self, data: bytes, offset: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = offset
        self.end = len(data) if end is None else end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise TDX_QUOTE_TRUNCATED(f"quote truncated in {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])


def _parse_header(r: _Reader) -> QuoteHeader:
    raw = r.take(HEADER_SIZE, "header")
    version, key_type, tee_type, qe_svn, pce_svn = struct.unpack_from("<HHIHH", raw)
    header = QuoteHeader(version, key_type, tee_type, qe_svn, pce_svn, raw[12:28], raw[28:48])
    if version not in (4, 5):
        raise TDX_QUOTE_UNSUPPORTED(f"quote version {version} (supported: 4, 5)")
    if tee_type != TEE_TYPE_TDX:
        raise TDX_QUOTE_UNSUPPORTED(f"TEE type {tee_type:#x} is not TDX (0x81)")
    if key_type != ATT_KEY_ECDSA_P256:
        raise TDX_QUOTE_UNSUPPORTED(f"attestation key type {key_type} (supported: 2, ECDSA P-256)")
    if header.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise TDX_QUOTE_UNSUPPORTED("QE vendor is not Intel")
    return header


def parse_td_body(raw: bytes) -> TdReportBody:
    """Parse a 584-byte (TD 1.0) or 648-byte (TD 1.5) TD quote body."""
    if len(raw) not in (TD10_BODY_SIZE, TD15_BODY_SIZE):
        raise TDX_QUOTE_TRUNCATED(f"TD report body of {len(raw)} bytes")

    def f(off: int, n: int) -> bytes:
        return raw[off : off + n]

    return TdReportBody(
        tee_tcb_svn=f(0, 16),
        mr_seam=f(16, 48),
        mr_signer_seam=f(64, 48),
        seam_attributes=f(112, 8),
        td_attributes=f(120, 8),
        xfam=f(128, 8),
        mr_td=f(136, 48),
        mr_config_id=f(184, 48),
        mr_owner=f(232, 48),
        mr_owner_config=f(280, 48),
        rtmrs=(f(328, 48), f(376, 48), f(424, 48), f(472, 48)),
        report_data=f(520, 64),
        tee_tcb_svn2=f(584, 16) if len(raw) == TD15_BODY_SIZE else None,
        mr_servicetd=f(600, 48) if len(raw) == TD15_BODY_SIZE else None,
    )


def parse_enclave_report(raw: bytes) -> EnclaveReport:
    if len(raw) != ENCLAVE_REPORT_SIZE:
        raise TDX_QUOTE_TRUNCATED("QE report truncated")
    (misc_select,) = struct.unpack_from("<I", raw, 16)
    isv_prod_id, isv_svn = struct.unpack_from("<HH", raw, 256)
    return EnclaveReport(
        raw=raw,
        cpu_svn=raw[0:16],
        misc_select=int(misc_select),
        attributes=raw[48:64],
        mr_enclave=raw[64:96],
        mr_signer=raw[128:160],
        isv_prod_id=int(isv_prod_id),
        isv_svn=int(isv_svn),
        report_data=raw[320:384],
    )


def parse_quote(data: bytes) -> Quote:
    """Parse a TDX quote v4 or v5 (fail closed); trailing bytes after the signature data are ignored."""
    if len(data) > MAX_QUOTE_BYTES:
        raise TDX_QUOTE_UNSUPPORTED(f"quote larger than {MAX_QUOTE_BYTES} bytes")
    r = _Reader(data)
    header = _parse_header(r)
    if header.version == 4:
        body_type = BODY_TYPE_TD10
        body_raw = r.take(TD10_BODY_SIZE, "TD quote body")
    else:
        body_type = r.u16("body type")
        body_size = r.u32("body size")
        expected = {BODY_TYPE_TD10: TD10_BODY_SIZE, BODY_TYPE_TD15: TD15_BODY_SIZE}.get(body_type)
        if expected is None:
            raise TDX_QUOTE_UNSUPPORTED(f"quote v5 body type {body_type} is not a TD report (2 or 3)")
        if body_size != expected:
            raise TDX_QUOTE_UNSUPPORTED(f"quote v5 body type {body_type} with size {body_size} (expected {expected})")
        body_raw = r.take(body_size, "TD quote body")
    signed_end = r.pos
    sig_len = r.u32("signature data length")
    s = _Reader(data, r.pos, r.pos + sig_len)
    if s.end > len(data):
        raise TDX_QUOTE_TRUNCATED("signature data extends past the end of the quote")
    signature = s.take(64, "quote signature")
    attestation_key = s.take(64, "attestation key")
    cert_type = s.u16("certification data type")
    cert_size = s.u32("certification data size")
    if cert_type != CERT_TYPE_QE_REPORT:
        raise TDX_QUOTE_UNSUPPORTED(f"certification data type {cert_type} (supported: 6, QE report)")
    c = _Reader(data, s.pos, s.pos + cert_size)
    if c.end > s.end:
        raise TDX_QUOTE_TRUNCATED("certification data extends past the signature data")
    qe_report = parse_enclave_report(c.take(ENCLAVE_REPORT_SIZE, "QE report"))
    qe_report_signature = c.take(64, "QE report signature")
    auth_len = c.u16("QE authentication data size")
    qe_auth_data = c.take(auth_len, "QE authentication data")
    inner_type = c.u16("inner certification data type")
    inner_size = c.u32("inner certification data size")
    if inner_type != CERT_TYPE_PCK_CHAIN:
        raise TDX_QUOTE_UNSUPPORTED(f"inner certification data type {inner_type} (supported: 5, PCK chain)")
    pck_chain = c.take(inner_size, "PCK certificate chain")
    if c.pos != c.end or s.pos + cert_size != s.end:
        # Lengths that disagree are ambiguous: refuse rather than guess which one is right.
        raise TDX_CERT_DATA_INVALID("certification data lengths are inconsistent")
    # Some generators NUL-terminate the PEM chain.
    pck_chain = pck_chain.rstrip(b"\x00")
    if b"-----BEGIN CERTIFICATE-----" not in pck_chain:
        raise TDX_CERT_DATA_INVALID("PCK chain is not PEM")
    return Quote(
        header=header,
        body_type=body_type,
        body=parse_td_body(body_raw),
        signed=data[:signed_end],
        signature=signature,
        attestation_key=attestation_key,
        qe_report=qe_report,
        qe_report_signature=qe_report_signature,
        qe_auth_data=qe_auth_data,
        pck_chain_pem=pck_chain,
        length=s.end,
    )
