"""SEV-SNP ATTESTATION_REPORT parsing (AMD SEV-SNP Firmware ABI spec #56860, Table "ATTESTATION_REPORT
Structure"; TCB_VERSION and GUEST_POLICY tables; GHCB spec #56421 extended-report certificate table).

Layout (offsets in bytes, little-endian). Versions 2–5 share one 1184-byte (0x4A0) structure; later
versions give meaning to bytes that earlier ones reserve:

* v3+: CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP at 0x188..0x18A (v2: reserved) → product line.
* v5: LAUNCH_MIT_VECTOR at 0x1F8 and CURRENT_MIT_VECTOR at 0x200 (v2–v4: reserved).
* v4 has the v3 layout (the version bump carries no new report fields).

The signed region is 0x000..0x29F; the signature (0x2A0) holds R and S as 72-byte little-endian
integers followed by 368 reserved bytes. All reserved bytes must be zero. Parsing uses the fixed
structure size, never the input length: trailing bytes may be zero padding or a certificate table.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from attestation_broker.evidence.snp.errors import (
    SNP_CERT_TABLE_MALFORMED,
    SNP_PRODUCT_UNKNOWN,
    SNP_REPORT_RESERVED_NONZERO,
    SNP_REPORT_TOO_LARGE,
    SNP_REPORT_TRAILING_DATA,
    SNP_REPORT_TRUNCATED,
    SNP_REPORT_VERSION_UNSUPPORTED,
    SNP_SIGNATURE_ALGORITHM_UNSUPPORTED,
)

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = (2, 3, 4, 5)
SIG_ALGO_ECDSA_P384_SHA384 = 1
# A report plus a certificate table of a handful of certificates is well under this.
MAX_EVIDENCE_SIZE = REPORT_SIZE + 64 * 1024

PRODUCTS = ("Milan", "Genoa", "Turin")

SIGNING_KEY_VCEK = 0
SIGNING_KEY_VLEK = 1
SIGNING_KEY_NONE = 7
SIGNING_KEY_NAMES = {SIGNING_KEY_VCEK: "vcek", SIGNING_KEY_VLEK: "vlek", SIGNING_KEY_NONE: "none"}


# Guest POLICY bits (GUEST_POLICY table). Bits 26..63 are reserved by the spec revisions we know;
# they are reported raw, not rejected, because newer firmware defines more bits.
POLICY_BITS = {
    "smt": 16,
    "reserved_must_be_one": 17,
    "migrate_ma": 18,
    "debug": 19,
    "single_socket": 20,
    "cxl_allow": 21,
    "mem_aes_256_xts": 22,
    "rapl_dis": 23,
    "ciphertext_hiding": 24,
    "page_swap_disable": 25,
}
PLATFORM_INFO_BITS = {
    "smt_en": 0,
    "tsme_en": 1,
    "ecc_en": 2,
    "rapl_dis": 3,
    "ciphertext_hiding_en": 4,
    "alias_check_complete": 5,
    "tio_en": 7,
}


@lru_cache(maxsize=1024)
def _decode_tcb(raw: int, product: str) -> TcbVersion:
    return TcbVersion._decode(raw, product)


@dataclass(frozen=True)
class TcbVersion:
    """A decoded TCB_VERSION. ``fmc`` is only present on Turin (None elsewhere)."""

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None

    @classmethod
    def decode(cls, raw: int, product: str) -> TcbVersion:
        """Memoized by (raw, product): a report carries four TCB values and a platform's reports repeat them."""
        return _decode_tcb(raw, product)

    @classmethod
    def _decode(cls, raw: int, product: str) -> TcbVersion:
        b = raw.to_bytes(8, "little")
        if product == "Turin":
            # Turin: byte0 FMC, byte1 BL, byte2 TEE, byte3 SNP, bytes 4..6 reserved, byte7 ucode.
            return cls(bootloader=b[1], tee=b[2], snp=b[3], microcode=b[7], fmc=b[0])
        # Milan/Genoa: byte0 BL, byte1 TEE, bytes 2..5 reserved, byte6 SNP, byte7 ucode.
        return cls(bootloader=b[0], tee=b[1], snp=b[6], microcode=b[7])

    def as_dict(self) -> dict[str, int]:
        out = {"bootloader": self.bootloader, "tee": self.tee, "snp": self.snp, "microcode": self.microcode}
        if self.fmc is not None:
            out["fmc"] = self.fmc
        return out

    def at_least(self, minimum: TcbVersion) -> bool:
        """Component-wise comparison (TCB SVNs are not totally ordered as a whole)."""
        if self.fmc is not None and minimum.fmc is not None and self.fmc < minimum.fmc:
            return False
        return (
            self.bootloader >= minimum.bootloader
            and self.tee >= minimum.tee
            and self.snp >= minimum.snp
            and self.microcode >= minimum.microcode
        )


@dataclass(frozen=True)
class AttestationReport:
    """A structurally valid ATTESTATION_REPORT. Nothing here is verified yet."""

    raw: bytes  # exactly REPORT_SIZE bytes
    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb_raw: int
    platform_info: int
    author_key_en: bool
    mask_chip_key: bool
    signing_key: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb_raw: int
    cpuid_fam_id: int | None
    cpuid_mod_id: int | None
    cpuid_step: int | None
    chip_id: bytes
    committed_tcb_raw: int
    current_version: tuple[int, int, int]  # major, minor, build
    committed_version: tuple[int, int, int]
    launch_tcb_raw: int
    launch_mit_vector: int | None
    current_mit_vector: int | None
    signature_r: int
    signature_s: int

    @property
    def signed_bytes(self) -> bytes:
        return self.raw[:SIGNED_SIZE]

    @property
    def debug(self) -> bool:
        return bool(self.policy >> POLICY_BITS["debug"] & 1)

    @property
    def abi_major(self) -> int:
        return (self.policy >> 8) & 0xFF

    @property
    def abi_minor(self) -> int:
        return self.policy & 0xFF

    @property
    def signing_key_name(self) -> str:
        return SIGNING_KEY_NAMES.get(self.signing_key, f"reserved-{self.signing_key}")

    @property
    def cpuid_product(self) -> str | None:
        """Product line from CPUID (v3+); None for v2 reports, which carry no CPUID."""
        if self.cpuid_fam_id is None or self.cpuid_mod_id is None:
            return None
        return product_from_cpuid(self.cpuid_fam_id, self.cpuid_mod_id)

    def policy_bits(self) -> dict[str, Any]:
        return dict(_policy_bits(self.policy))

    def platform_info_bits(self) -> dict[str, bool]:
        return dict(_platform_info_bits(self.platform_info))


# The named bits of a POLICY or PLATFORM_INFO value, memoized by the value (a platform's reports repeat them);
# callers get a copy, so the claims they build never share a mutable dict.
@lru_cache(maxsize=256)
def _policy_bits(policy: int) -> tuple[tuple[str, Any], ...]:
    bits: dict[str, Any] = {"abi_major": (policy >> 8) & 0xFF, "abi_minor": policy & 0xFF}
    for name, bit in POLICY_BITS.items():
        bits[name] = bool(policy >> bit & 1)
    return tuple(bits.items())


@lru_cache(maxsize=256)
def _platform_info_bits(platform_info: int) -> tuple[tuple[str, bool], ...]:
    return tuple((name, bool(platform_info >> bit & 1)) for name, bit in PLATFORM_INFO_BITS.items())


def product_from_cpuid(family: int, model: int) -> str | None:
    """CPUID family/model → product line (Zen 3 Milan, Zen 4 Genoa incl. Bergamo/Siena, Zen 5 Turin)."""
    if family == 0x19:
        if model <= 0x0F:
            return "Milan"
        if 0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF:
            return "Genoa"
    if family == 0x1A and model <= 0x1F:
        return "Turin"
    return None


def require_product(report: AttestationReport) -> str:
    product = report.cpuid_product
    if report.cpuid_fam_id is not None and product is None:
        raise SNP_PRODUCT_UNKNOWN(
            f"CPUID family 0x{report.cpuid_fam_id:02x} model 0x{report.cpuid_mod_id or 0:02x} "
            "is not a known SNP product"
        )
    if product is None:
        raise SNP_PRODUCT_UNKNOWN()
    return product


def _zero(data: bytes, start: int, end: int, name: str) -> None:
    # Counting zero bytes in place: ``any(data[start:end])`` made an int per byte (about 6 µs per report).
    if data.count(0, start, end) != end - start:
        raise SNP_REPORT_RESERVED_NONZERO(f"reserved field {name} (0x{start:03x}..0x{end - 1:03x}) is not zero")


def parse_report(data: bytes) -> AttestationReport:
    """Parse the first REPORT_SIZE bytes of ``data`` as an ATTESTATION_REPORT (trailing bytes are ignored
    here; see :func:`split_evidence`). Raises typed errors for truncation, unknown versions, unsupported
    signature algorithms and non-zero reserved fields."""
    if len(data) < REPORT_SIZE:
        raise SNP_REPORT_TRUNCATED(f"report has {len(data)} bytes, structure needs {REPORT_SIZE}")
    raw = bytes(data[:REPORT_SIZE])
    (version,) = struct.unpack_from("<I", raw, 0x000)
    if version not in SUPPORTED_VERSIONS:
        expected = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        detail = f"report VERSION is {version}; expected one of {expected}"
        if all(0x20 <= b < 0x7F for b in raw[:8]):
            # e.g. 808464944 is the text "0000": hex or base64 sent where the binary report belongs
            detail += " (the input starts with text, not a binary report: decode hex or base64 first)"
        raise SNP_REPORT_VERSION_UNSUPPORTED(detail)
    guest_svn, policy = struct.unpack_from("<IQ", raw, 0x004)
    vmpl, sig_algo, current_tcb, platform_info, key_info = struct.unpack_from("<IIQQI", raw, 0x030)
    if sig_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise SNP_SIGNATURE_ALGORITHM_UNSUPPORTED(f"SIGNATURE_ALGO {sig_algo}")
    if key_info >> 5:
        raise SNP_REPORT_RESERVED_NONZERO("reserved bits 5..31 of the key-info field (0x048) are not zero")
    _zero(raw, 0x04C, 0x050, "RESERVED0")
    if version >= 3:
        fam, mod, step = raw[0x188], raw[0x189], raw[0x18A]
        _zero(raw, 0x18B, 0x1A0, "RESERVED1")
        cpuid: tuple[int | None, int | None, int | None] = (fam, mod, step)
    else:
        _zero(raw, 0x188, 0x1A0, "RESERVED1")
        cpuid = (None, None, None)
    _zero(raw, 0x1EB, 0x1EC, "CURRENT version reserved byte")
    _zero(raw, 0x1EF, 0x1F0, "COMMITTED version reserved byte")
    if version >= 5:
        launch_mit, current_mit = struct.unpack_from("<QQ", raw, 0x1F8)
        _zero(raw, 0x208, SIGNED_SIZE, "RESERVED2")
        mit: tuple[int | None, int | None] = (launch_mit, current_mit)
    else:
        _zero(raw, 0x1F8, SIGNED_SIZE, "RESERVED2")
        mit = (None, None)
    _zero(raw, 0x330, REPORT_SIZE, "SIGNATURE reserved")
    (reported_tcb,) = struct.unpack_from("<Q", raw, 0x180)
    (committed_tcb,) = struct.unpack_from("<Q", raw, 0x1E0)
    (launch_tcb,) = struct.unpack_from("<Q", raw, 0x1F0)
    return AttestationReport(
        raw=raw,
        version=version,
        guest_svn=guest_svn,
        policy=policy,
        family_id=raw[0x010:0x020],
        image_id=raw[0x020:0x030],
        vmpl=vmpl,
        signature_algo=sig_algo,
        current_tcb_raw=current_tcb,
        platform_info=platform_info,
        author_key_en=bool(key_info & 1),
        mask_chip_key=bool(key_info >> 1 & 1),
        signing_key=(key_info >> 2) & 0x7,
        report_data=raw[0x050:0x090],
        measurement=raw[0x090:0x0C0],
        host_data=raw[0x0C0:0x0E0],
        id_key_digest=raw[0x0E0:0x110],
        author_key_digest=raw[0x110:0x140],
        report_id=raw[0x140:0x160],
        report_id_ma=raw[0x160:0x180],
        reported_tcb_raw=reported_tcb,
        cpuid_fam_id=cpuid[0],
        cpuid_mod_id=cpuid[1],
        cpuid_step=cpuid[2],
        chip_id=raw[0x1A0:0x1E0],
        committed_tcb_raw=committed_tcb,
        current_version=(raw[0x1EA], raw[0x1E9], raw[0x1E8]),
        committed_version=(raw[0x1EE], raw[0x1ED], raw[0x1EC]),
        launch_tcb_raw=launch_tcb,
        launch_mit_vector=mit[0],
        current_mit_vector=mit[1],
        signature_r=int.from_bytes(raw[0x2A0:0x2E8], "little"),
        signature_s=int.from_bytes(raw[0x2E8:0x330], "little"),
    )


# --- Extended-report certificate table (GHCB spec, SNP_GUEST_REQUEST with certificates) -------------

CERT_TABLE_GUIDS = {
    uuid.UUID("c0b406a4-a803-4952-9743-3fb6014cd0ae"): "ark",
    uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782"): "ask",
    uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd"): "vcek",
    uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1"): "vlek",
}
# Hypervisors write the GUID either in RFC 4122 byte order or in the little-endian (EFI) form;
# accept both spellings of the same known GUIDs.
_GUID_BYTES: dict[bytes, str] = {}
for _guid, _role in CERT_TABLE_GUIDS.items():
    _GUID_BYTES[_guid.bytes] = _role
    _GUID_BYTES[_guid.bytes_le] = _role
_ENTRY = struct.Struct("<16sII")
MAX_TABLE_ENTRIES = 16


@dataclass(frozen=True)
class CertTableEntry:
    role: str  # "ark" | "ask" | "vcek" | "vlek" | "unknown"
    guid: str
    data: bytes


def looks_like_cert_table(data: bytes) -> bool:
    return len(data) >= _ENTRY.size and bytes(data[:16]) in _GUID_BYTES


def parse_cert_table(table: bytes) -> tuple[CertTableEntry, ...]:
    """Entries of (GUID, offset, length) relative to the table start, ended by an all-zero entry."""
    entries: list[CertTableEntry] = []
    for index in range(MAX_TABLE_ENTRIES + 1):
        pos = index * _ENTRY.size
        if pos + _ENTRY.size > len(table):
            raise SNP_CERT_TABLE_MALFORMED("certificate table has no terminating entry")
        guid, offset, length = _ENTRY.unpack_from(table, pos)
        if guid == bytes(16) and offset == 0 and length == 0:
            return tuple(entries)
        if index == MAX_TABLE_ENTRIES:
            break
        if length == 0 or offset < pos + _ENTRY.size or offset + length > len(table):
            raise SNP_CERT_TABLE_MALFORMED(f"entry {index} points outside the table")
        role = _GUID_BYTES.get(guid, "unknown")
        entries.append(CertTableEntry(role, str(uuid.UUID(bytes=guid)), bytes(table[offset : offset + length])))
    raise SNP_CERT_TABLE_MALFORMED(f"certificate table has more than {MAX_TABLE_ENTRIES} entries")


def split_evidence(data: bytes) -> tuple[AttestationReport, tuple[CertTableEntry, ...]]:
    """Split raw SNP evidence into the report and an optional trailing certificate table.

    Accepted shapes: the bare report; the report followed by zero padding; the report followed by
    an extended-report certificate table (optionally zero-padded). Anything else is rejected."""
    if len(data) > MAX_EVIDENCE_SIZE:
        raise SNP_REPORT_TOO_LARGE(f"{len(data)} bytes exceeds {MAX_EVIDENCE_SIZE}")
    report = parse_report(data)
    rest = bytes(data[REPORT_SIZE:])
    if rest.count(0) == len(rest):  # nothing, or zero padding
        return report, ()
    if looks_like_cert_table(rest):
        return report, parse_cert_table(rest)
    raise SNP_REPORT_TRAILING_DATA(f"{len(rest)} trailing bytes after the report")
