"""TCG PC Client event logs: parse, replay into PCRs, compare with quoted PCRs, extract boot facts.

Implements the TCG PC Client Platform Firmware Profile Specification (PFP) v1.05:
- §10.2.1 TCG_PCClientPCREvent (SHA-1 "legacy" format, also the first event of a crypto-agile log);
- §10.2.2 TCG_PCR_EVENT2 with TPML_DIGEST_VALUES; §10.4.5.1 TCG_EfiSpecIDEvent ("Spec ID Event03");
- §10.4.5.3 StartupLocality (EV_NO_ACTION) → PCR0 reset value; EV_NO_ACTION never extends (§10.4.5);
- §10.4.1 event types; §3.3.4 EV_SEPARATOR (0x00000000 normal, anything else an error separator);
- UEFI_VARIABLE_DATA (§10.2.6) for EV_EFI_VARIABLE_DRIVER_CONFIG / EV_EFI_VARIABLE_AUTHORITY (PCR7 secure boot);
- UEFI_IMAGE_LOAD_EVENT (§10.2.3) for EV_EFI_BOOT_SERVICES_APPLICATION (PCR4 boot loader / kernel);
- GCE's EV_NONHOST_INFO (PCR0): ``"GCE NonHostInfo\\0"`` + technology byte + 15 reserved bytes (32 bytes).

Facts are only taken from events of PCRs that replayed to the quoted value, and only from events whose
content hashes to the logged digest, so nothing unverified reaches the claims. Integers are little-endian.

:func:`verify_event_log` is a pure function of the log bytes, the quoted PCR values, the bank and the ignored PCRs;
its result is memoized by exactly those (the log compared byte for byte), so a machine that attests again with the
same boot log and the same PCRs skips parsing and replay, while any other log or any other PCR value is replayed in
full. Failures are never memoized. For a log not seen before the parser checks every event but only records where
it lies (:class:`EventLog`); replay and the facts read digests and data from the log bytes, and :class:`Event`
objects are built only when ``EventLog.events`` is read.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from attestation_broker.errors import BrokerError
from attestation_broker.evidence.common import LruMemo

from .abi import ALG_SHA1, DIGEST_SIZES, HASH_NAMES
from .digest import bank_alg, hash_bytes, hash_function
from .errors import (
    TPM_EVENTLOG_BANK_MISSING,
    TPM_EVENTLOG_EVENT_DIGEST_MISMATCH,
    TPM_EVENTLOG_MALFORMED,
    TPM_EVENTLOG_REPLAY_MISMATCH,
    TPM_EVENTLOG_SEPARATOR_ERROR,
    TPM_EVENTLOG_UNLOGGED_PCR,
)

# Event types (PFP §10.4.1, Table 9).
EV_PREBOOT_CERT = 0x0
EV_POST_CODE = 0x1
EV_NO_ACTION = 0x3
EV_SEPARATOR = 0x4
EV_ACTION = 0x5
EV_EVENT_TAG = 0x6
EV_S_CRTM_CONTENTS = 0x7
EV_S_CRTM_VERSION = 0x8
EV_CPU_MICROCODE = 0x9
EV_PLATFORM_CONFIG_FLAGS = 0xA
EV_TABLE_OF_DEVICES = 0xB
EV_COMPACT_HASH = 0xC
EV_IPL = 0xD
EV_IPL_PARTITION_DATA = 0xE
EV_NONHOST_CODE = 0xF
EV_NONHOST_CONFIG = 0x10
EV_NONHOST_INFO = 0x11
EV_OMIT_BOOT_DEVICE_EVENTS = 0x12
_EFI = 0x80000000
EV_EFI_VARIABLE_DRIVER_CONFIG = _EFI + 0x1
EV_EFI_VARIABLE_BOOT = _EFI + 0x2
EV_EFI_BOOT_SERVICES_APPLICATION = _EFI + 0x3
EV_EFI_BOOT_SERVICES_DRIVER = _EFI + 0x4
EV_EFI_RUNTIME_SERVICES_DRIVER = _EFI + 0x5
EV_EFI_GPT_EVENT = _EFI + 0x6
EV_EFI_ACTION = _EFI + 0x7
EV_EFI_PLATFORM_FIRMWARE_BLOB = _EFI + 0x8
EV_EFI_HANDOFF_TABLES = _EFI + 0x9
EV_EFI_PLATFORM_FIRMWARE_BLOB2 = _EFI + 0xA
EV_EFI_HANDOFF_TABLES2 = _EFI + 0xB
EV_EFI_VARIABLE_BOOT2 = _EFI + 0xC
EV_EFI_HCRTM_EVENT = _EFI + 0x10
EV_EFI_VARIABLE_AUTHORITY = _EFI + 0xE0
EV_EFI_SPDM_FIRMWARE_BLOB = _EFI + 0xE1
EV_EFI_SPDM_FIRMWARE_CONFIG = _EFI + 0xE2

EVENT_TYPE_NAMES: dict[int, str] = {
    value: name for name, value in list(globals().items()) if name.startswith("EV_") and isinstance(value, int)
}

_SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
_STARTUP_LOCALITY_SIGNATURE = b"StartupLocality\x00"
_GCE_NONHOST_SIGNATURE = b"GCE NonHostInfo\x00"
_GCE_FIRMWARE_PREFIX = "GCE Virtual Firmware v"
_GCE_TECHNOLOGY = {0: "none", 1: "sev", 2: "sev-es", 3: "tdx", 4: "sev-snp"}
# EFI_GLOBAL_VARIABLE and EFI_IMAGE_SECURITY_DATABASE_GUID (UEFI 2.x §3.3 / §32.6.1), mixed-endian GUID bytes.
_EFI_GLOBAL_VARIABLE = bytes.fromhex("61dfe48bca93d211aa0d00e098032b8c")
_EFI_IMAGE_SECURITY_DATABASE = bytes.fromhex("cbb219d73a3d9645a3bcdad00e67656f")
_SECURE_BOOT_VARS = {
    (_EFI_GLOBAL_VARIABLE, "SecureBoot"): "secure_boot",
    (_EFI_GLOBAL_VARIABLE, "PK"): "pk",
    (_EFI_GLOBAL_VARIABLE, "KEK"): "kek",
    (_EFI_IMAGE_SECURITY_DATABASE, "db"): "db",
    (_EFI_IMAGE_SECURITY_DATABASE, "dbx"): "dbx",
}

_MAX_EVENTS = 100_000
_MAX_EVENT_DATA = 16 * 1024 * 1024
_MAX_LOG = 64 * 1024 * 1024
# PCRs 17-22 reset to all ones (PFP §3.3.3, DRTM PCRs); the rest to zero, PCR0 to the startup locality.
_ONES_PCRS = range(17, 23)


class Event(NamedTuple):
    """One measured event. ``digests`` maps TPM_ALG_ID → digest; ``seq`` is the position in the log.

    Immutable like the frozen dataclasses of the other boundaries, but a named tuple: cheap to build for logs of
    hundreds of events.
    """

    seq: int
    pcr: int
    event_type: int
    digests: Mapping[int, bytes]
    data: bytes

    @property
    def type_name(self) -> str:
        return type_name(self.event_type)


def type_name(event_type: int) -> str:
    return EVENT_TYPE_NAMES.get(event_type, f"0x{event_type:08x}")


class _Rec(NamedTuple):
    """Where one event lies in the log, as the parser found (and checked) it. ``digests`` is None for an event of
    the log's usual layout (a digest of every declared bank, in the Spec ID's order): its digests are then at the
    offsets :attr:`EventLog._offsets` gives from ``start``; any other event carries its digest mapping here."""

    seq: int
    pcr: int
    event_type: int
    start: int
    data_at: int
    size: int
    digests: Mapping[int, bytes] | None


@dataclass(frozen=True)
class EventLog:
    """A parsed log. ``banks`` are the TPM_ALG_IDs the log carries (from the Spec ID event; SHA-1 for legacy).

    The parser checks every event and records where it lies; :attr:`events` builds the :class:`Event` objects on
    first use. Verification (:func:`verify_event_log`) reads digests and data straight from the log bytes and never
    needs them: building hundreds of events, their digest mappings and data copies was most of the cost of
    verifying a log not seen before.
    """

    banks: tuple[int, ...]
    crypto_agile: bool
    startup_locality: int
    _raw: bytes = field(repr=False)
    _records: tuple[_Rec, ...] = field(repr=False)
    # alg → (offset from the event's start, size) of its digest in events of the usual layout.
    _offsets: Mapping[int, tuple[int, int]] = field(repr=False)

    @cached_property
    def events(self) -> tuple[Event, ...]:
        raw, offsets, make, proxy = self._raw, tuple(self._offsets.items()), tuple.__new__, MappingProxyType
        events: list[Event] = []
        for seq, pcr, event_type, start, data_at, size, digests in self._records:
            if digests is None:
                digests = proxy({alg: raw[start + at : start + at + n] for alg, (at, n) in offsets})
            events.append(make(Event, (seq, pcr, event_type, digests, raw[data_at : data_at + size])))
        return tuple(events)

    @property
    def pcrs(self) -> tuple[int, ...]:
        """PCR indices that at least one extending event measures into."""
        return tuple(sorted({r.pcr for r in self._records if r.event_type != EV_NO_ACTION}))


_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_EVENT_HEAD = struct.Struct("<III")  # pcrIndex, eventType, then digests.count (agile) or part of the digest


class _LeReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise TPM_EVENTLOG_MALFORMED(f"event log: {what} runs past the end (offset {self.pos})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int(_U16.unpack(self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])


def _parse_spec_id(data: bytes) -> dict[int, int]:
    """TCG_EfiSpecIDEvent → {alg: digest size}."""
    r = _LeReader(data)
    if r.take(16, "Spec ID signature") != _SPEC_ID_SIGNATURE:
        raise TPM_EVENTLOG_MALFORMED("event log: first event is not Spec ID Event03")
    r.u32("platformClass")
    r.take(4, "spec version / errata / uintnSize")
    count = r.u32("numberOfAlgorithms")
    if not 1 <= count <= 8:
        raise TPM_EVENTLOG_MALFORMED(f"event log: Spec ID lists {count} algorithms")
    sizes: dict[int, int] = {}
    for _ in range(count):
        alg = r.u16("algorithmId")
        size = r.u16("digestSize")
        known = DIGEST_SIZES.get(alg)
        if known is not None and known != size:
            raise TPM_EVENTLOG_MALFORMED(f"event log: Spec ID gives {size}-byte digests for 0x{alg:04x}")
        sizes[alg] = size
    vendor = r.u8("vendorInfoSize")
    r.take(vendor, "vendorInfo")
    if r.pos != len(data):
        raise TPM_EVENTLOG_MALFORMED("event log: Spec ID event has trailing bytes")
    return sizes


# The event readers below work on (data, offset) with one bounds check per field group and precompiled
# ``struct`` layouts, and the agile loop is one function with its lookups bound to locals: a log has hundreds of
# events, and a call, a reader object or an attribute lookup per field was most of the parse time.


def _past_end(what: str, pos: int) -> BrokerError:
    return TPM_EVENTLOG_MALFORMED(f"event log: {what} runs past the end (offset {pos})")


def _legacy_record(data: bytes, pos: int, seq: int) -> tuple[_Rec, int]:
    """TCG_PCClientPCREvent at ``pos``: (record, position after it)."""
    end = len(data)
    if pos + 32 > end:
        raise _past_end("event header", pos)
    pcr, etype = _EVENT_HEAD.unpack_from(data, pos)[:2]
    digest = data[pos + 8 : pos + 28]
    (size,) = _U32.unpack_from(data, pos + 28)
    if size > _MAX_EVENT_DATA:
        raise TPM_EVENTLOG_MALFORMED(f"event log: event {seq} claims {size} bytes")
    if pos + 32 + size > end:
        raise _past_end("event", pos + 32)
    return _Rec(seq, pcr, etype, pos, pos + 32, size, MappingProxyType({ALG_SHA1: digest})), pos + 32 + size


@lru_cache(maxsize=16)
def _usual_layout(layout: tuple[tuple[int, int], ...]) -> tuple[struct.Struct, Mapping[int, tuple[int, int]]]:
    """The TCG_PCR_EVENT2 layout every event has in practice: header, then one digest of each bank the Spec ID
    declares, in its order (``layout``: (alg, size) pairs), then eventSize. Returns the struct that reads its
    integers (pcrIndex, eventType, count, each hashAlg, eventSize; digests skipped) and where each digest lies."""
    offsets: dict[int, tuple[int, int]] = {}
    at = 12
    for alg, size in layout:
        offsets[alg] = (at + 2, size)
        at += 2 + size
    return struct.Struct("<III" + "".join(f"H{size}x" for _, size in layout) + "I"), MappingProxyType(offsets)


def _agile_records(data: bytes, pos: int, stop: int, sizes: Mapping[int, int]) -> tuple[list[_Rec], int]:
    """Every TCG_PCR_EVENT2 from ``pos`` up to ``stop`` (where trailing padding starts): (records, startup locality).

    Events are numbered from 1 (0 is the Spec ID header). PCR indices are checked here (PC Client TPMs have 24
    PCRs; EV_NO_ACTION may use any index but is never replayed) and StartupLocality (§10.4.5.3) is read here.
    An event of the usual layout (:func:`_usual_layout`) is read by one precompiled ``struct``; any other event field
    by field, with the same checks and the same errors.
    """
    end = len(data)
    head = _EVENT_HEAD.unpack_from
    u16 = _U16.unpack_from
    u32 = _U32.unpack_from
    make = tuple.__new__  # the named tuple's own __new__ is a Python-level wrapper around it
    algs = tuple(sizes)
    banks = len(algs)
    usual, _ = _usual_layout(tuple(sizes.items()))
    usual_size = usual.size
    unpack_usual = usual.unpack_from
    algs_at = slice(3, 3 + banks)
    records: list[_Rec] = []
    append = records.append
    locality = 0
    seq = 1
    while pos < stop:
        if seq > _MAX_EVENTS:
            raise TPM_EVENTLOG_MALFORMED("event log has too many events")
        start = pos
        fields = unpack_usual(data, pos) if pos + usual_size <= end else None
        digests: dict[int, bytes] | None = None
        if fields is not None and fields[2] == banks and fields[algs_at] == algs:
            pcr, etype, size = fields[0], fields[1], fields[-1]
            pos += usual_size
        else:
            if pos + 12 > end:
                raise _past_end("event header", pos)
            pcr, etype, count = head(data, pos)
            pos += 12
            if not 1 <= count <= banks:
                raise TPM_EVENTLOG_MALFORMED(f"event log: event {seq} has {count} digests")
            digests = {}
            for _ in range(count):
                if pos + 2 > end:
                    raise _past_end("digests.hashAlg", pos)
                (alg,) = u16(data, pos)
                digest_size = sizes.get(alg)
                if digest_size is None or alg in digests:
                    raise TPM_EVENTLOG_MALFORMED(f"event log: event {seq} has an undeclared or repeated digest")
                pos += 2
                if pos + digest_size > end:
                    raise _past_end("digest", pos)
                digests[alg] = data[pos : pos + digest_size]
                pos += digest_size
            if pos + 4 > end:
                raise _past_end("eventSize", pos)
            (size,) = u32(data, pos)
            pos += 4
        if size > _MAX_EVENT_DATA:
            raise TPM_EVENTLOG_MALFORMED(f"event log: event {seq} claims {size} bytes")
        if pos + size > end:
            raise _past_end("event", pos)
        if etype == EV_NO_ACTION:
            locality = _startup_locality(data, pcr, pos, size, locality)
        elif pcr > 23:
            raise TPM_EVENTLOG_MALFORMED(f"event log: event {seq} measures into PCR {pcr}")
        proxy = None if digests is None else MappingProxyType(digests)
        append(make(_Rec, (seq, pcr, etype, start, pos, size, proxy)))
        pos += size
        seq += 1
    return records, locality


def _startup_locality(data: bytes, pcr: int, at: int, size: int, current: int) -> int:
    """The locality an EV_NO_ACTION event's data (``size`` bytes at ``at``) sets, when it is the StartupLocality
    event (PFP §10.4.5.3: in PCR 0, the signature then one byte); else ``current``."""
    if pcr != 0 or not data.startswith(_STARTUP_LOCALITY_SIGNATURE, at, at + size):
        return current
    if size != len(_STARTUP_LOCALITY_SIGNATURE) + 1:
        raise TPM_EVENTLOG_MALFORMED("event log: StartupLocality event has a bad size")
    return data[at + size - 1]


def _check_pcr_index(rec: _Rec) -> None:
    # PC Client TPMs have 24 PCRs; EV_NO_ACTION may use any index but must not be replayed.
    if rec.event_type != EV_NO_ACTION and rec.pcr > 23:
        raise TPM_EVENTLOG_MALFORMED(f"event log: event {rec.seq} measures into PCR {rec.pcr}")


def parse_event_log(data: bytes) -> EventLog:
    """Parse a crypto-agile (``Spec ID Event03``) or SHA-1-only legacy TCG event log.

    Trailing zero or 0xFF padding (ACPI log areas) is ignored; anything else malformed raises
    TPM_EVENTLOG_MALFORMED.
    """
    data = bytes(data)
    if not data or len(data) > _MAX_LOG:
        raise TPM_EVENTLOG_MALFORMED(f"event log of {len(data)} bytes")
    first, pos = _legacy_record(data, 0, 0)
    first_data = data[first.data_at : first.data_at + first.size]
    agile = first.event_type == EV_NO_ACTION and first_data.startswith(_SPEC_ID_SIGNATURE)
    # Trailing padding (all zeros or all 0xFF to the end): where it starts, found once rather than by copying the
    # rest of the log at every event.
    padding = min(len(data.rstrip(b"\x00")), len(data.rstrip(b"\xff")))
    if agile:
        sizes = _parse_spec_id(first_data)
        # The Spec ID header only describes the log; it is not an event of the platform.
        records, locality = _agile_records(data, pos, padding, sizes)
        _, offsets = _usual_layout(tuple(sizes.items()))
        return EventLog(tuple(sizes), True, locality, data, tuple(records), offsets)
    legacy: list[_Rec] = [first]
    end = len(data)
    locality = 0
    while pos < end:
        if pos >= padding:
            break
        if len(legacy) >= _MAX_EVENTS:
            raise TPM_EVENTLOG_MALFORMED("event log has too many events")
        rec, pos = _legacy_record(data, pos, len(legacy))
        _check_pcr_index(rec)
        if rec.event_type == EV_NO_ACTION:
            locality = _startup_locality(data, rec.pcr, rec.data_at, rec.size, locality)
        legacy.append(rec)
    _check_pcr_index(first)
    return EventLog((ALG_SHA1,), False, locality, data, tuple(legacy), MappingProxyType({}))


@lru_cache(maxsize=512)  # a handful of distinct values, asked for every unlogged PCR of every verification
def initial_value(pcr: int, alg: int, startup_locality: int = 0) -> bytes:
    """A PCR's reset value: zeros, all-ones for PCR 17–22, and PCR0's last byte = startup locality."""
    size = DIGEST_SIZES[alg]
    if pcr in _ONES_PCRS:
        return b"\xff" * size
    if pcr == 0 and startup_locality:
        return b"\x00" * (size - 1) + bytes([startup_locality])
    return b"\x00" * size


def replay(log: EventLog, bank: str) -> dict[int, bytes]:
    """Replay every extending event of ``bank`` into PCRs; returns values only for PCRs with events.

    Raises TPM_EVENTLOG_BANK_MISSING when the log does not carry the bank (or an event lacks its digest).
    """
    return _replay(log, bank_alg(bank))[0]


# An extending event as the facts read it: its record and its digest in the verified bank.
_Logged = tuple[_Rec, bytes]


def _replay(log: EventLog, alg: int) -> tuple[dict[int, bytes], dict[int, list[_Logged]]]:
    """The replay of :func:`replay`, plus the extending events of each PCR in log order with their digest in ``alg``
    (what the facts are read from), gathered in the same pass. Digests are read from the log bytes (see
    :class:`EventLog`)."""
    if alg not in log.banks:
        raise TPM_EVENTLOG_BANK_MISSING(f"event log has no {HASH_NAMES.get(alg, 'unknown')} digests")
    new = hash_function(alg)
    raw = log._raw
    # Events of the usual layout carry every declared bank, so ``alg`` has an offset whenever one is usual.
    at, size = log._offsets.get(alg, (0, 0))
    pcrs: dict[int, bytes] = {}
    by_pcr: dict[int, list[_Logged]] = {}
    for rec in log._records:
        seq, pcr, event_type, start, _, _, digests = rec
        if event_type == EV_NO_ACTION:
            continue
        if digests is None:
            start += at
            digest = raw[start : start + size]
        else:
            found = digests.get(alg)
            if found is None:
                raise TPM_EVENTLOG_BANK_MISSING(f"event {seq} has no {HASH_NAMES[alg]} digest")
            digest = found
        current = pcrs.get(pcr)
        if current is None:
            current = initial_value(pcr, alg, log.startup_locality)
            by_pcr[pcr] = [(rec, digest)]
        else:
            by_pcr[pcr].append((rec, digest))
        pcrs[pcr] = new(current + digest).digest()  # extend: H(old ‖ digest), TPM 2.0 Part 1 §17.2
    return pcrs, by_pcr


# ------------------------------------------------------------------------------------------ verified facts


@dataclass(frozen=True)
class SecureBootState:
    """PCR7 facts. Variable digests are SHA-256 of the variable *content*, independent of the quoted bank."""

    enabled: bool | None
    variables: Mapping[str, str]  # "pk"/"kek"/"db"/"dbx" → sha256 hex of the variable data
    authorities: tuple[str, ...]  # sha256 hex of each EV_EFI_VARIABLE_AUTHORITY variable data (certs used)
    unverified_authorities: int = 0  # authority events whose data does not hash to their digest (not reported)


@dataclass(frozen=True)
class VerifiedEventLog:
    """An event log whose replay matched the quoted PCRs in ``checked_pcrs`` of ``bank``."""

    log: EventLog
    bank: str
    replayed: Mapping[int, bytes]
    checked_pcrs: tuple[int, ...]
    secure_boot: SecureBootState | None  # None when PCR7 was not checked
    boot_applications: tuple[str, ...]  # PCR4 EV_EFI_BOOT_SERVICES_APPLICATION digests (bank), in load order
    separators: tuple[int, ...]  # checked PCRs 0-7 that carry a (normal) EV_SEPARATOR
    gce_technology: str | None  # from GCE EV_NONHOST_INFO in PCR0, when present and PCR0 checked
    firmware_version: str | None  # EV_S_CRTM_VERSION text (UCS-2) in PCR0
    kernel_cmdline: str | None  # GRUB "kernel_cmdline: " (PCR8), when verified
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def event_count(self) -> int:
        return len(self.log._records)


_NORMAL_SEPARATOR = b"\x00\x00\x00\x00"  # PFP §3.3.4: EV_SEPARATOR data of a normal (non-error) separator


@cache
def _normal_separator_digest(alg: int) -> bytes:
    return hash_bytes(alg, _NORMAL_SEPARATOR)


def _require_content_digest(rec: _Rec, logged: bytes, alg: int, content: bytes) -> None:
    """An interpreted event must hash to its logged digest in the verified bank (else its data is unproven)."""
    _require_logged(rec, logged, hash_bytes(alg, content))


def _require_logged(rec: _Rec, logged: bytes, computed: bytes) -> None:
    """The logged digest of ``rec`` must equal ``computed``, the hash of its data in the verified bank."""
    if not hmac.compare_digest(computed, logged):
        name = type_name(rec.event_type)
        raise TPM_EVENTLOG_EVENT_DIGEST_MISMATCH(f"event {rec.seq} ({name}) data does not match its digest")


_UEFI_VARIABLE_LENGTHS = struct.Struct("<QQ")  # UnicodeNameLength, VariableDataLength


def _parse_uefi_variable(data: bytes, seq: int) -> tuple[bytes, str, bytes]:
    """UEFI_VARIABLE_DATA: GUID, u64 name length (chars), u64 data length, UTF-16LE name, data."""
    if len(data) < 32:
        raise TPM_EVENTLOG_MALFORMED(f"event {seq}: UEFI_VARIABLE_DATA truncated")
    guid = data[:16]
    name_len, data_len = _UEFI_VARIABLE_LENGTHS.unpack_from(data, 16)
    end_name = 32 + 2 * name_len
    if end_name + data_len != len(data):
        raise TPM_EVENTLOG_MALFORMED(f"event {seq}: UEFI_VARIABLE_DATA lengths do not add up")
    try:
        name = data[32:end_name].decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise TPM_EVENTLOG_MALFORMED(f"event {seq}: variable name is not UTF-16") from exc
    return guid, name, data[end_name:]


def _ucs2_text(data: bytes) -> str | None:
    try:
        return data.decode("utf-16-le").rstrip("\x00")
    except UnicodeDecodeError:
        return None


def _secure_boot(raw: bytes, events: list[_Logged], alg: int) -> SecureBootState:
    enabled: bool | None = None
    variables: dict[str, str] = {}
    authorities: list[str] = []
    unverified = 0
    for rec, logged in events:
        if rec.event_type == EV_EFI_VARIABLE_DRIVER_CONFIG:
            data = raw[rec.data_at : rec.data_at + rec.size]
            _require_content_digest(rec, logged, alg, data)
            guid, name, value = _parse_uefi_variable(data, rec.seq)
            key = _SECURE_BOOT_VARS.get((guid, name))
            if key == "secure_boot":
                enabled = value == b"\x01"
            elif key is not None:
                variables[key] = hashlib.sha256(value).hexdigest()
        elif rec.event_type == EV_EFI_VARIABLE_AUTHORITY:
            # Some shim versions log authority events whose digest is not H(event data) (seen in GCE COS 85):
            # such content is unproven, so it is counted but not reported.
            data = raw[rec.data_at : rec.data_at + rec.size]
            if not hmac.compare_digest(hash_bytes(alg, data), logged):
                unverified += 1
                continue
            _, _, value = _parse_uefi_variable(data, rec.seq)
            authorities.append(hashlib.sha256(value).hexdigest())
    return SecureBootState(enabled, MappingProxyType(variables), tuple(authorities), unverified)


def _grub_cmdline(raw: bytes, events: list[_Logged], alg: int) -> str | None:
    found: str | None = None
    prefix = b"kernel_cmdline: "
    for rec, logged in events:
        if rec.event_type != EV_IPL or not raw.startswith(prefix, rec.data_at, rec.data_at + rec.size):
            continue
        data = raw[rec.data_at : rec.data_at + rec.size]
        body = data[len(prefix) :]
        # GRUB measures the command text without its description prefix (and without the trailing NUL).
        candidates = (body, body.rstrip(b"\x00"), data)
        if not any(hmac.compare_digest(hash_bytes(alg, c), logged) for c in candidates):
            raise TPM_EVENTLOG_EVENT_DIGEST_MISMATCH(f"event {rec.seq} (kernel_cmdline) does not match its digest")
        found = body.rstrip(b"\x00").decode("utf-8", "replace")
    return found


# Verified logs by (log length, bank, quoted PCR values, ignored PCRs), served only to the very same log bytes (compared
# with the log the entry verified: a byte comparison, where hashing the log cost a tenth of a warm gcp-vtpm
# verification); see the module docstring.
_VERIFIED = LruMemo(256)


def verify_event_log(
    log: bytes | EventLog,
    quoted: Mapping[int, bytes],
    bank: str,
    *,
    ignore_pcrs: Collection[int] = (),
) -> VerifiedEventLog:
    """Replay ``log`` in ``bank`` and compare with the quoted (already signature-verified) PCR values.

    Every quoted PCR not in ``ignore_pcrs`` is checked: one with events must equal its replayed value
    (TPM_EVENTLOG_REPLAY_MISMATCH); one without events must be at its reset value
    (TPM_EVENTLOG_UNLOGGED_PCR). Callers ignore PCRs the firmware log cannot cover (e.g. GCE PCR10, IMA).
    Facts are then extracted from the checked PCRs only; error separators raise TPM_EVENTLOG_SEPARATOR_ERROR.
    """
    if isinstance(log, EventLog):
        return _verify_event_log(log, quoted, bank, ignore_pcrs)
    data = bytes(log)
    key = (
        len(data),
        bank,
        tuple(sorted((index, bytes(value)) for index, value in quoted.items())),
        tuple(sorted(set(ignore_pcrs))),
    )
    return _VERIFIED.get(
        key,
        lambda: _verify_event_log(parse_event_log(data), quoted, bank, ignore_pcrs),
        valid=lambda verified: verified.log._raw == data,
    )


def _verify_event_log(
    parsed: EventLog, quoted: Mapping[int, bytes], bank: str, ignore_pcrs: Collection[int]
) -> VerifiedEventLog:
    alg = bank_alg(bank)
    replayed, events_of = _replay(parsed, alg)
    checked: list[int] = []
    for index in sorted(quoted):
        if index in ignore_pcrs:
            continue
        value = bytes(quoted[index])
        expected = replayed.get(index)
        if expected is None:
            if not hmac.compare_digest(value, initial_value(index, alg, parsed.startup_locality)):
                raise TPM_EVENTLOG_UNLOGGED_PCR(f"PCR {index} has no events but is not at its reset value")
        elif not hmac.compare_digest(value, expected):
            raise TPM_EVENTLOG_REPLAY_MISMATCH(f"PCR {index} ({HASH_NAMES[alg]}) does not match the event log")
        checked.append(index)
    verified = set(checked)
    # Facts come from the extending events of checked PCRs only.
    by_pcr = {index: events for index, events in events_of.items() if index in verified}

    raw = parsed._raw
    separators: list[int] = []
    normal = _normal_separator_digest(alg)
    for index in range(8):
        for rec, logged in by_pcr.get(index, ()):
            if rec.event_type != EV_SEPARATOR:
                continue
            data = raw[rec.data_at : rec.data_at + rec.size]
            if data == _NORMAL_SEPARATOR:
                # H(00000000) is the same for every normal separator: computed once per bank, compared each time.
                _require_logged(rec, logged, normal)
            else:
                _require_content_digest(rec, logged, alg, data)
                raise TPM_EVENTLOG_SEPARATOR_ERROR(f"PCR {index} has an error separator")
            if index not in separators:
                separators.append(index)

    gce_tech: str | None = None
    firmware: str | None = None
    for rec, logged in by_pcr.get(0, ()):
        if rec.event_type == EV_NONHOST_INFO:
            data = raw[rec.data_at : rec.data_at + rec.size]
            if not data.startswith(_GCE_NONHOST_SIGNATURE):
                continue
            _require_content_digest(rec, logged, alg, data)
            if len(data) != 32:
                raise TPM_EVENTLOG_MALFORMED(f"event {rec.seq}: GCE NonHostInfo is {len(data)} bytes")
            gce_tech = _GCE_TECHNOLOGY.get(data[16], f"unknown-{data[16]}")
        elif rec.event_type == EV_S_CRTM_VERSION:
            data = raw[rec.data_at : rec.data_at + rec.size]
            _require_content_digest(rec, logged, alg, data)
            firmware = _ucs2_text(data)

    secure_boot = _secure_boot(raw, by_pcr[7], alg) if 7 in verified and 7 in by_pcr else None
    apps = tuple(
        logged.hex() for rec, logged in by_pcr.get(4, ()) if rec.event_type == EV_EFI_BOOT_SERVICES_APPLICATION
    )
    cmdline = _grub_cmdline(raw, by_pcr.get(8, []), alg) if 8 in verified else None
    return VerifiedEventLog(
        parsed,
        HASH_NAMES[alg],
        MappingProxyType(replayed),
        tuple(checked),
        secure_boot,
        apps,
        tuple(separators),
        gce_tech,
        firmware,
        cmdline,
    )


def event_log_claims(verified: VerifiedEventLog) -> dict[str, Any]:
    """Normalized ``tpm.*`` facts from a verified log (merge into the ``tpm`` claim object)."""
    out: dict[str, Any] = {
        "event_count": verified.event_count,
        "event_log_format": "crypto-agile" if verified.log.crypto_agile else "sha1-legacy",
        "event_log_pcrs": list(verified.checked_pcrs),
        "separators": list(verified.separators),
    }
    sb = verified.secure_boot
    if sb is not None:
        out["secure_boot"] = {
            "enabled": sb.enabled,
            **dict(sb.variables),
            "authorities": list(sb.authorities),
            "unverified_authorities": sb.unverified_authorities,
        }
    boot: dict[str, Any] = {}
    if verified.boot_applications:
        boot["efi_applications"] = list(verified.boot_applications)
        boot["bootloader"] = verified.boot_applications[0]
        if len(verified.boot_applications) > 1:
            boot["kernel"] = verified.boot_applications[-1]
    if verified.kernel_cmdline is not None:
        boot["kernel_cmdline"] = verified.kernel_cmdline
    if verified.firmware_version is not None:
        boot["firmware_version"] = verified.firmware_version
    if boot:
        out["boot"] = boot
    if verified.gce_technology is not None:
        out["gce_confidential_technology"] = verified.gce_technology
    return out
