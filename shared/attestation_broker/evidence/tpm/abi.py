"""TPM 2.0 wire structures used by quotes (TPM 2.0 Library Part 2: Structures).

Implements, big-endian as on the TPM wire:
- §10.12.8 TPMS_ATTEST with §10.12.1 TPMS_CLOCK_INFO and §10.12.4 TPMS_QUOTE_INFO (type TPM_ST_ATTEST_QUOTE);
- §10.9.7 TPML_PCR_SELECTION / §10.6.2 TPMS_PCR_SELECTION;
- §11.3.4 TPMT_SIGNATURE (RSASSA, RSAPSS, ECDSA);
- §12.2.4 TPMT_PUBLIC / §12.2.5 TPM2B_PUBLIC for RSA and ECC keys (§12.2.3.5 RSA, §12.2.3.6 ECC parameters).

Every parser walks the structure's own length fields and refuses trailing bytes (fail closed).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from attestation_broker.errors import BrokerError, ErrorCode

from .errors import TPM_AK_MALFORMED, TPM_ATTEST_MALFORMED, TPM_ATTEST_NOT_QUOTE, TPM_SIGNATURE_MALFORMED

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_QUOTE = 0x8018

# TPM_ALG_ID (Part 2 §6.3).
ALG_RSA = 0x0001
ALG_SHA1 = 0x0004
ALG_SHA256 = 0x000B
ALG_SHA384 = 0x000C
ALG_SHA512 = 0x000D
ALG_NULL = 0x0010
ALG_SM3_256 = 0x0012
ALG_RSASSA = 0x0014
ALG_RSAPSS = 0x0016
ALG_ECDSA = 0x0018
ALG_ECDAA = 0x001A
ALG_ECC = 0x0023

# TPM_ECC_CURVE (Part 2 §6.4).
ECC_NIST_P256 = 0x0003
ECC_NIST_P384 = 0x0004
ECC_NIST_P521 = 0x0005

HASH_NAMES: dict[int, str] = {
    ALG_SHA1: "sha1",
    ALG_SHA256: "sha256",
    ALG_SHA384: "sha384",
    ALG_SHA512: "sha512",
    ALG_SM3_256: "sm3_256",
}
HASH_IDS: dict[str, int] = {name: alg for alg, name in HASH_NAMES.items()}
DIGEST_SIZES: dict[int, int] = {ALG_SHA1: 20, ALG_SHA256: 32, ALG_SHA384: 48, ALG_SHA512: 64, ALG_SM3_256: 32}
SIG_NAMES: dict[int, str] = {ALG_RSASSA: "rsassa", ALG_RSAPSS: "rsapss", ALG_ECDSA: "ecdsa"}

# TPMA_OBJECT bits (Part 2 §8.3).
ATTR_FIXED_TPM = 1 << 1
ATTR_FIXED_PARENT = 1 << 4
ATTR_SENSITIVE_DATA_ORIGIN = 1 << 5
ATTR_RESTRICTED = 1 << 16
ATTR_DECRYPT = 1 << 17
ATTR_SIGN = 1 << 18

_PCR_SELECT_MAX = 8  # bytes per bank bitmap we accept (PC Client TPMs use 3)
_HASH_COUNT_MAX = 8  # banks per selection list


_BE_U16 = struct.Struct(">H")
_BE_U32 = struct.Struct(">I")
_BE_U64 = struct.Struct(">Q")


class _Reader:
    """Bounds-checked big-endian cursor; every overrun raises the structure's own code. Integers are read in place
    with precompiled layouts (no slice per field: a quote has about twenty fields and is parsed on every call)."""

    __slots__ = ("_code", "_data", "_end", "_pos", "_what")

    def __init__(self, data: bytes, code: ErrorCode, what: str) -> None:
        self._data = data
        self._end = len(data)
        self._pos = 0
        self._code = code
        self._what = what

    def _past(self, field: str) -> BrokerError:
        return self._code(f"{self._what}: {field} runs past the end")

    def take(self, n: int, field: str) -> bytes:
        pos = self._pos
        if n < 0 or pos + n > self._end:
            raise self._past(field)
        self._pos = pos + n
        return self._data[pos : pos + n]

    def u8(self, field: str) -> int:
        pos = self._pos
        if pos + 1 > self._end:
            raise self._past(field)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self, field: str) -> int:
        pos = self._pos
        if pos + 2 > self._end:
            raise self._past(field)
        self._pos = pos + 2
        return int(_BE_U16.unpack_from(self._data, pos)[0])

    def u32(self, field: str) -> int:
        pos = self._pos
        if pos + 4 > self._end:
            raise self._past(field)
        self._pos = pos + 4
        return int(_BE_U32.unpack_from(self._data, pos)[0])

    def u64(self, field: str) -> int:
        pos = self._pos
        if pos + 8 > self._end:
            raise self._past(field)
        self._pos = pos + 8
        return int(_BE_U64.unpack_from(self._data, pos)[0])

    def tpm2b(self, field: str, max_size: int | None = None) -> bytes:
        pos = self._pos
        if pos + 2 > self._end:
            raise self._past(f"{field}.size")
        self._pos = pos + 2
        (size,) = _BE_U16.unpack_from(self._data, pos)
        if max_size is not None and size > max_size:
            raise self._code(f"{self._what}: {field} is {size} bytes (max {max_size})")
        return self.take(size, field)

    def slice_from(self, start: int) -> bytes:
        return self._data[start : self._pos]

    @property
    def pos(self) -> int:
        return self._pos

    def done(self) -> None:
        if self._pos != self._end:
            raise self._code(f"{self._what}: {self._end - self._pos} trailing bytes")


# --------------------------------------------------------------------------------------------- TPMS_ATTEST


@dataclass(frozen=True)
class PcrSelection:
    """One TPMS_PCR_SELECTION: a bank (hash algorithm) and the PCR indices selected, ascending."""

    hash_alg: int
    pcrs: tuple[int, ...]

    @property
    def bank(self) -> str:
        return HASH_NAMES.get(self.hash_alg, f"0x{self.hash_alg:04x}")


@dataclass(frozen=True)
class ClockInfo:
    clock: int
    reset_count: int
    restart_count: int
    safe: bool


@dataclass(frozen=True)
class Attest:
    """A parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE; ``raw`` is the exact signed byte string."""

    raw: bytes
    qualified_signer: bytes
    extra_data: bytes
    clock_info: ClockInfo
    firmware_version: int
    pcr_select: tuple[PcrSelection, ...]
    pcr_digest: bytes


# _SELECTED[i][b]: the PCR indices that byte value ``b`` at bitmap offset ``i`` selects, ascending.
_SELECTED = tuple(
    tuple(tuple(8 * index + bit for bit in range(8) if byte & (1 << bit)) for byte in range(256))
    for index in range(_PCR_SELECT_MAX)
)


def _parse_pcr_selection(r: _Reader) -> tuple[PcrSelection, ...]:
    count = r.u32("pcrSelect.count")
    if count > _HASH_COUNT_MAX:
        raise TPM_ATTEST_MALFORMED(f"TPMS_ATTEST: {count} PCR banks selected")
    out: list[PcrSelection] = []
    for _ in range(count):
        alg = r.u16("pcrSelections.hash")
        size = r.u8("pcrSelections.sizeofSelect")
        if size > _PCR_SELECT_MAX:
            raise TPM_ATTEST_MALFORMED(f"TPMS_ATTEST: sizeofSelect {size}")
        bitmap = r.take(size, "pcrSelections.pcrSelect")
        # Bit i of byte i//8 selects PCR i (Part 2 §10.6.1).
        pcrs = tuple(pcr for index, byte in enumerate(bitmap) for pcr in _SELECTED[index][byte])
        out.append(PcrSelection(alg, pcrs))
    return tuple(out)


def parse_attest(data: bytes) -> Attest:
    """Parse a TPMS_ATTEST quote body (the bytes the AK signed). Raises TPM_ATTEST_* codes.

    A well-formed quote is read with a few precompiled layouts (it is parsed for every quote of every call); anything
    irregular is parsed again field by field, which raises the error that names the field.
    """
    data = bytes(data)
    try:
        return _parse_attest_fast(data)
    except (_Irregular, struct.error):
        return _parse_attest_checked(data)


class _Irregular(Exception):
    """Internal: the fast TPMS_ATTEST reader met something the checked reader must name."""


_ATTEST_HEAD = struct.Struct(">IHH")  # magic, type, qualifiedSigner.size
_ATTEST_CLOCK = struct.Struct(">QIIBQI")  # clock, resetCount, restartCount, safe, firmwareVersion, pcrSelect.count
_ATTEST_SELECT = struct.Struct(">HB")  # hash, sizeofSelect


def _parse_attest_fast(data: bytes) -> Attest:
    end = len(data)
    magic, st, signer_size = _ATTEST_HEAD.unpack_from(data, 0)
    if magic != TPM_GENERATED_VALUE or st != TPM_ST_ATTEST_QUOTE or signer_size > 2 + 64:
        raise _Irregular
    pos = 8 + signer_size
    signer = data[8:pos]
    (extra_size,) = _BE_U16.unpack_from(data, pos)
    pos += 2
    if extra_size > 64:
        raise _Irregular
    extra = data[pos : pos + extra_size]
    pos += extra_size
    clock, reset_count, restart_count, safe, firmware, count = _ATTEST_CLOCK.unpack_from(data, pos)
    pos += _ATTEST_CLOCK.size
    if safe > 1 or count > _HASH_COUNT_MAX:
        raise _Irregular
    selection: list[PcrSelection] = []
    for _ in range(count):
        alg, size = _ATTEST_SELECT.unpack_from(data, pos)
        pos += 3
        if size > _PCR_SELECT_MAX or pos + size > end:
            raise _Irregular
        bitmap = data[pos : pos + size]
        pos += size
        selection.append(PcrSelection(alg, tuple(pcr for i, byte in enumerate(bitmap) for pcr in _SELECTED[i][byte])))
    (digest_size,) = _BE_U16.unpack_from(data, pos)
    pos += 2
    if digest_size > 64 or pos + digest_size != end:
        raise _Irregular
    clock_info = ClockInfo(clock, reset_count, restart_count, bool(safe))
    return Attest(data, signer, extra, clock_info, firmware, tuple(selection), data[pos:end])


def _parse_attest_checked(data: bytes) -> Attest:
    """Field by field, each read bounds-checked: the precise error for any irregular TPMS_ATTEST."""
    r = _Reader(data, TPM_ATTEST_MALFORMED, "TPMS_ATTEST")
    magic = r.u32("magic")
    if magic != TPM_GENERATED_VALUE:
        raise TPM_ATTEST_NOT_QUOTE("TPMS_ATTEST magic is not TPM_GENERATED_VALUE")
    st = r.u16("type")
    if st != TPM_ST_ATTEST_QUOTE:
        raise TPM_ATTEST_NOT_QUOTE(f"TPMS_ATTEST type 0x{st:04x} is not TPM_ST_ATTEST_QUOTE")
    signer = r.tpm2b("qualifiedSigner", 2 + 64)
    extra = r.tpm2b("extraData", 64)
    clock, reset_count, restart_count = r.u64("clock"), r.u32("resetCount"), r.u32("restartCount")
    safe = r.u8("safe")
    if safe > 1:
        raise TPM_ATTEST_MALFORMED("TPMS_ATTEST: clockInfo.safe is not a TPMI_YES_NO")
    clock_info = ClockInfo(clock, reset_count, restart_count, bool(safe))
    firmware = r.u64("firmwareVersion")
    selection = _parse_pcr_selection(r)
    digest = r.tpm2b("pcrDigest", 64)
    r.done()
    return Attest(data, signer, extra, clock_info, firmware, selection, digest)


# ------------------------------------------------------------------------------------------ TPMT_SIGNATURE


@dataclass(frozen=True)
class Signature:
    """A quote signature. ``sig_alg`` is ALG_RSASSA/ALG_RSAPSS/ALG_ECDSA; ``hash_alg`` None means "bare":
    a raw RSA PKCS#1 v1.5 signature without the TPMT_SIGNATURE wrapper (Azure), whose hash comes from the key
    scheme (SHA-256 when the key has none). For ECDSA ``value`` is empty and ``r``/``s`` are set."""

    sig_alg: int
    hash_alg: int | None
    value: bytes = b""
    r: int = 0
    s: int = 0

    @property
    def bare(self) -> bool:
        return self.hash_alg is None


_SIGNATURE_HEAD = struct.Struct(">HHH")  # sigAlg, hash, and for RSA the signature's size


def _parse_tpmt_signature(data: bytes) -> Signature:
    if len(data) >= 6:
        # An RSA signature that fills the buffer exactly: its three fields at once (what the reader below would
        # accept with the same values); anything else is read field by field for the precise error.
        alg, hash_alg, size = _SIGNATURE_HEAD.unpack_from(data)
        if (
            alg in (ALG_RSASSA, ALG_RSAPSS)
            and hash_alg in HASH_NAMES
            and hash_alg != ALG_SM3_256
            and size <= 512
            and len(data) == 6 + size
        ):
            return Signature(alg, hash_alg, data[6:])
    return _parse_tpmt_signature_checked(data)


def _parse_tpmt_signature_checked(data: bytes) -> Signature:
    """Field by field, each read bounds-checked: the precise error for any TPMT_SIGNATURE."""
    rd = _Reader(data, TPM_SIGNATURE_MALFORMED, "TPMT_SIGNATURE")
    alg = rd.u16("sigAlg")
    if alg not in SIG_NAMES:
        raise TPM_SIGNATURE_MALFORMED(f"TPMT_SIGNATURE: unsupported sigAlg 0x{alg:04x}")
    hash_alg = rd.u16("hash")
    if hash_alg not in HASH_NAMES or hash_alg == ALG_SM3_256:
        raise TPM_SIGNATURE_MALFORMED(f"TPMT_SIGNATURE: unsupported hash 0x{hash_alg:04x}")
    if alg == ALG_ECDSA:
        r = rd.tpm2b("signatureR", 66)
        s = rd.tpm2b("signatureS", 66)
        rd.done()
        return Signature(alg, hash_alg, b"", int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    sig = rd.tpm2b("sig", 512)
    rd.done()
    return Signature(alg, hash_alg, sig)


def parse_signature(data: bytes) -> Signature:
    """Parse a TPMT_SIGNATURE, or accept a bare RSA signature (128/256/384/512 bytes) as Azure emits it.

    A buffer is taken as TPMT_SIGNATURE when its first field is a supported sigAlg and it parses exactly;
    otherwise a bare RSA signature of a standard modulus size, else TPM_SIGNATURE_MALFORMED.
    """
    data = bytes(data)
    if len(data) >= 2 and int.from_bytes(data[:2], "big") in SIG_NAMES:
        try:
            return _parse_tpmt_signature(data)
        except Exception:
            if len(data) not in (128, 256, 384, 512):
                raise
    if len(data) in (128, 256, 384, 512):
        return Signature(ALG_RSASSA, None, data)
    raise TPM_SIGNATURE_MALFORMED(f"signature of {len(data)} bytes is neither TPMT_SIGNATURE nor bare RSA")


# -------------------------------------------------------------------------------------------- TPMT_PUBLIC


@dataclass(frozen=True)
class TpmPublic:
    """A parsed TPMT_PUBLIC (RSA or ECC). ``raw`` is the exact TPMT_PUBLIC encoding (what the Name hashes)."""

    raw: bytes
    type: int
    name_alg: int
    attributes: int
    auth_policy: bytes
    scheme: int  # ALG_NULL when the key is unrestricted in scheme
    scheme_hash: int | None
    # RSA
    key_bits: int = 0
    exponent: int = 0
    modulus: bytes = b""
    # ECC
    curve: int = 0
    x: bytes = b""
    y: bytes = b""


def _parse_scheme(r: _Reader) -> tuple[int, int | None]:
    scheme = r.u16("scheme")
    if scheme == ALG_NULL:
        return scheme, None
    hash_alg = r.u16("scheme.hashAlg")
    if scheme == ALG_ECDAA:
        r.u16("scheme.count")
    return scheme, hash_alg


def _parse_tpmt_public_from(r: _Reader) -> TpmPublic:
    start = r.pos
    typ = r.u16("type")
    name_alg = r.u16("nameAlg")
    attrs = r.u32("objectAttributes")
    policy = r.tpm2b("authPolicy", 64)
    sym = r.u16("symmetric.algorithm")
    if sym != ALG_NULL:
        r.u16("symmetric.keyBits")
        r.u16("symmetric.mode")
    if typ == ALG_RSA:
        scheme, scheme_hash = _parse_scheme(r)
        bits = r.u16("keyBits")
        exponent = r.u32("exponent") or 65537  # 0 means the default exponent (Part 2 §12.2.3.5)
        modulus = r.tpm2b("unique.rsa", 512)
        raw = r.slice_from(start)
        return TpmPublic(
            raw, typ, name_alg, attrs, policy, scheme, scheme_hash, key_bits=bits, exponent=exponent, modulus=modulus
        )
    if typ == ALG_ECC:
        scheme, scheme_hash = _parse_scheme(r)
        curve = r.u16("curveID")
        kdf = r.u16("kdf.scheme")
        if kdf != ALG_NULL:
            r.u16("kdf.hashAlg")
        x = r.tpm2b("unique.ecc.x", 66)
        y = r.tpm2b("unique.ecc.y", 66)
        raw = r.slice_from(start)
        return TpmPublic(raw, typ, name_alg, attrs, policy, scheme, scheme_hash, curve=curve, x=x, y=y)
    raise TPM_AK_MALFORMED(f"TPMT_PUBLIC type 0x{typ:04x} is neither RSA nor ECC")


def parse_tpmt_public(data: bytes) -> TpmPublic:
    """Parse a bare TPMT_PUBLIC (as go-tpm-tools ``ak_pub`` carries it)."""
    r = _Reader(bytes(data), TPM_AK_MALFORMED, "TPMT_PUBLIC")
    out = _parse_tpmt_public_from(r)
    r.done()
    return out


def parse_tpm2b_public(data: bytes) -> TpmPublic:
    """Parse a TPM2B_PUBLIC (u16 size + TPMT_PUBLIC), as tpm2-tools writes with ``-u``."""
    r = _Reader(bytes(data), TPM_AK_MALFORMED, "TPM2B_PUBLIC")
    inner = r.tpm2b("publicArea")
    r.done()
    return parse_tpmt_public(inner)


def looks_like_tpm_public(data: bytes) -> bool:
    """Cheap content sniff: TPMT_PUBLIC starts with type RSA/ECC; TPM2B_PUBLIC with a size equal to the rest."""
    if len(data) < 8:
        return False
    first = int.from_bytes(data[:2], "big")
    if first in (ALG_RSA, ALG_ECC):
        return True
    return first == len(data) - 2 and int.from_bytes(data[2:4], "big") in (ALG_RSA, ALG_ECC)
