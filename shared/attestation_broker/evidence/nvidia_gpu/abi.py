"""NVIDIA GPU / NVSwitch attestation reports: an SPDM 1.1 GET_MEASUREMENTS request followed by its
MEASUREMENTS response (DMTF DSP0274 1.1.x §10.11), parsed by its own length fields.

Layout (all integers little-endian, as DSP0274 requires):

* request, 37 bytes: SPDMVersion 0x11, code 0xE0, Param1 (bit 0: signature requested), Param2
  (0xFF: all blocks), 32-byte requester nonce, SlotIDParam.
* response: SPDMVersion 0x11, code 0x60, Param1, Param2, NumberOfBlocks (u8), MeasurementRecordLength
  (u24), the record (NumberOfBlocks measurement blocks: Index u8, MeasurementSpecification u8,
  MeasurementSize u16, then the DMTF measurement: DMTFSpecMeasurementValueType u8,
  DMTFSpecMeasurementValueSize u16, value), 32-byte responder nonce, OpaqueLength (u16), OpaqueData,
  Signature (ECDSA P-384 raw r ‖ s, 96 bytes).

The signature is located from the length fields, never from the end of the buffer: real captures carry
a trailing byte after it (docs/evidence.md, "NVIDIA GPUs"). Trailing bytes are reported, not signed.

Opaque data is NVIDIA's TLV list (type u16, length u16, value). Field names are those of NVIDIA's
attestation SDK parsers (``OPAQUE_FIELD_ID_*``); ids 22..26 mean different things on GPUs and on
NVSwitches, so decoding takes the device type. No maintained Python library parses SPDM measurement
transcripts, hence this module.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import NVIDIA_REPORT_MALFORMED

REQUEST_LENGTH = 37
SPDM_VERSION_11 = 0x11
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
NONCE_LENGTH = 32
SIGNATURE_LENGTH = 96  # ECDSA P-384 r ‖ s
MAX_REPORT_BYTES = 64 * 1024
DMTF_SPEC = 0x01  # MeasurementSpecification bit 0: DMTF

# NVIDIA SDK opaque field ids and names, common to GPUs and NVSwitches.
_COMMON_FIELDS: dict[int, str] = {
    1: "OPAQUE_FIELD_ID_CERT_ISSUER_NAME",
    2: "OPAQUE_FIELD_ID_CERT_AUTHORITY_KEY_IDENTIFIER",
    3: "OPAQUE_FIELD_ID_DRIVER_VERSION",
    4: "OPAQUE_FIELD_ID_GPU_INFO",
    5: "OPAQUE_FIELD_ID_SKU",
    6: "OPAQUE_FIELD_ID_VBIOS_VERSION",
    7: "OPAQUE_FIELD_ID_MANUFACTURER_ID",
    8: "OPAQUE_FIELD_ID_TAMPER_DETECTION",
    9: "OPAQUE_FIELD_ID_SMC",
    10: "OPAQUE_FIELD_ID_VPR",
    11: "OPAQUE_FIELD_ID_NVDEC0_STATUS",
    12: "OPAQUE_FIELD_ID_MSRSCNT",
    13: "OPAQUE_FIELD_ID_CPRINFO",
    14: "OPAQUE_FIELD_ID_BOARD_ID",
    15: "OPAQUE_FIELD_ID_CHIP_SKU",
    16: "OPAQUE_FIELD_ID_CHIP_SKU_MOD",
    17: "OPAQUE_FIELD_ID_PROJECT",
    18: "OPAQUE_FIELD_ID_PROJECT_SKU",
    19: "OPAQUE_FIELD_ID_PROJECT_SKU_MOD",
    20: "OPAQUE_FIELD_ID_FWID",
    21: "OPAQUE_FIELD_ID_PROTECTED_PCIE_STATUS",
    32: "OPAQUE_FIELD_ID_GPU_LINK_CONN",
    33: "OPAQUE_FIELD_ID_SYS_ENABLE_STATUS",
    34: "OPAQUE_FIELD_ID_OPAQUE_DATA_VERSION",
    35: "OPAQUE_FIELD_ID_CHIP_INFO",
    36: "OPAQUE_FIELD_ID_FEATURE_FLAG",
}
GPU_FIELDS: Mapping[int, str] = MappingProxyType(
    {
        **_COMMON_FIELDS,
        22: "OPAQUE_FIELD_ID_SWITCH_PDI",
        23: "OPAQUE_FIELD_ID_FLOORSWEPT_PORTS",
        24: "OPAQUE_FIELD_ID_POSITION_ID",
        25: "OPAQUE_FIELD_ID_LOCK_SWITCH_STATUS",
    }
)
SWITCH_FIELDS: Mapping[int, str] = MappingProxyType(
    {
        **_COMMON_FIELDS,
        22: "OPAQUE_FIELD_ID_DEVICE_PDI",
        23: "OPAQUE_FIELD_ID_DISABLED_PORTS",
        24: "OPAQUE_FIELD_ID_SWITCH_POSITION_ID",
        25: "OPAQUE_FIELD_ID_SWITCH_LOCK_STATUS",
        26: "OPAQUE_FIELD_ID_SWITCH_GPU_PDIS",
    }
)
FIELD_MSRSCNT = 12
FIELD_DRIVER_VERSION = 3
FIELD_VBIOS_VERSION = 6
FIELD_NVDEC0_STATUS = 11
FIELD_PROJECT = 17
FIELD_PROJECT_SKU = 18
FIELD_CHIP_SKU = 15
FIELD_FWID = 20
FIELD_PPCIE_STATUS = 21
FIELD_FEATURE_FLAG = 36
FIELD_SWITCH_GPU_PDIS = 26
PDI_LENGTH = 8
SWITCH_PDI_COUNT = 8  # SWITCH_GPU_PDIS: eight 8-byte PDIs, then one byte per port
FEATURE_FLAGS = {0: "SPT", 1: "MPT", 2: "PPCIE"}


@dataclass(frozen=True)
class MeasurementBlock:
    index: int
    spec: int
    value_type: int
    value: bytes


@dataclass(frozen=True)
class OpaqueField:
    type: int
    value: bytes


@dataclass(frozen=True)
class Report:
    """A parsed report. ``signed`` is request ‖ response up to the signature (what the device signed)."""

    request_param1: int
    request_param2: int
    requester_nonce: bytes
    slot_id: int
    response_param1: int
    response_param2: int
    record_length: int
    blocks: tuple[MeasurementBlock, ...]
    responder_nonce: bytes
    opaque: tuple[OpaqueField, ...]
    opaque_length: int
    signature: bytes
    signed: bytes
    trailing: int

    def opaque_value(self, field_type: int) -> bytes | None:
        for entry in self.opaque:
            if entry.type == field_type:
                return entry.value
        return None

    def measurement(self, index: int) -> bytes | None:
        """The value of SPDM measurement block ``index`` (1-based, as the device numbers them)."""
        for block in self.blocks:
            if block.index == index:
                return block.value
        return None


class _Reader:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data = data
        self.pos = offset

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NVIDIA_REPORT_MALFORMED(f"report truncated in {what}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        value: int = struct.unpack("<H", self.take(2, what))[0]
        return value

    def u24(self, what: str) -> int:
        return int.from_bytes(self.take(3, what), "little")


def _blocks(record: bytes, count: int) -> tuple[MeasurementBlock, ...]:
    reader = _Reader(record)
    blocks: list[MeasurementBlock] = []
    seen: set[int] = set()
    for _ in range(count):
        index = reader.u8("measurement block index")
        spec = reader.u8("measurement specification")
        size = reader.u16("measurement size")
        body = _Reader(reader.take(size, "measurement block"))
        value_type = body.u8("DMTF value type")
        value_size = body.u16("DMTF value size")
        value = body.take(value_size, "DMTF value")
        if body.pos != size or spec != DMTF_SPEC:
            raise NVIDIA_REPORT_MALFORMED(f"measurement block {index} is not one DMTF measurement")
        if index in seen or index == 0:
            raise NVIDIA_REPORT_MALFORMED(f"measurement block index {index} repeated or zero")
        seen.add(index)
        blocks.append(MeasurementBlock(index, spec, value_type, value))
    if reader.pos != len(record):
        raise NVIDIA_REPORT_MALFORMED("measurement record length disagrees with its blocks")
    return tuple(blocks)


def _opaque(data: bytes) -> tuple[OpaqueField, ...]:
    reader = _Reader(data)
    fields: list[OpaqueField] = []
    while reader.pos < len(data):
        field_type = reader.u16("opaque field type")
        length = reader.u16("opaque field length")
        fields.append(OpaqueField(field_type, reader.take(length, f"opaque field {field_type}")))
    return tuple(fields)


def parse_report(data: bytes) -> Report:
    """Parse request ‖ response; NVIDIA_REPORT_MALFORMED on any inconsistency."""
    if len(data) > MAX_REPORT_BYTES:
        raise NVIDIA_REPORT_MALFORMED("report exceeds the size limit")
    reader = _Reader(data)
    version, code, param1, param2 = reader.take(4, "request header")
    if version != SPDM_VERSION_11 or code != GET_MEASUREMENTS:
        raise NVIDIA_REPORT_MALFORMED("report does not start with an SPDM 1.1 GET_MEASUREMENTS request")
    if not param1 & 0x01:
        raise NVIDIA_REPORT_MALFORMED("GET_MEASUREMENTS request did not ask for a signature")
    nonce = reader.take(NONCE_LENGTH, "request nonce")
    slot = reader.u8("request slot id")
    rversion, rcode, rparam1, rparam2 = reader.take(4, "response header")
    if rversion != SPDM_VERSION_11 or rcode != MEASUREMENTS:
        raise NVIDIA_REPORT_MALFORMED("request is not followed by an SPDM 1.1 MEASUREMENTS response")
    count = reader.u8("NumberOfBlocks")
    record_length = reader.u24("MeasurementRecordLength")
    blocks = _blocks(reader.take(record_length, "measurement record"), count)
    responder_nonce = reader.take(NONCE_LENGTH, "response nonce")
    opaque_length = reader.u16("OpaqueLength")
    opaque = _opaque(reader.take(opaque_length, "opaque data"))
    signed_end = reader.pos
    signature = reader.take(SIGNATURE_LENGTH, "signature")
    return Report(
        request_param1=param1,
        request_param2=param2,
        requester_nonce=nonce,
        slot_id=slot,
        response_param1=rparam1,
        response_param2=rparam2,
        record_length=record_length,
        blocks=blocks,
        responder_nonce=responder_nonce,
        opaque=opaque,
        opaque_length=opaque_length,
        signature=signature,
        signed=data[:signed_end],
        trailing=len(data) - reader.pos,
    )


# --- opaque data decoding, as NVIDIA's SDK presents it ------------------------------------------------


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _u32_list(value: bytes) -> list[int]:
    if len(value) % 4:
        raise NVIDIA_REPORT_MALFORMED("OPAQUE_FIELD_ID_MSRSCNT is not a list of 32-bit counts")
    return [int.from_bytes(value[i : i + 4], "little") for i in range(0, len(value), 4)]


def _port_bits(value: bytes) -> list[int]:
    """Floorswept/disabled ports: each bit (most significant first) stands for four ports."""
    out: list[int] = []
    for byte in value:
        for bit in range(7, -1, -1):
            out.extend([(byte >> bit) & 1] * 4)
    return out


def decode_opaque(report: Report, *, switch: bool) -> dict[str, Any]:
    """The opaque fields by NVIDIA name, values rendered as NVIDIA's SDK dumps them (parser oracle)."""
    names = SWITCH_FIELDS if switch else GPU_FIELDS
    out: dict[str, Any] = {}
    for entry in report.opaque:
        name = names.get(entry.type, f"OPAQUE_FIELD_ID_UNKNOWN_{entry.type}")
        if entry.type == FIELD_MSRSCNT:
            out[name] = _u32_list(entry.value)
        elif switch and entry.type == FIELD_SWITCH_GPU_PDIS:
            pdis_end = SWITCH_PDI_COUNT * PDI_LENGTH
            if len(entry.value) < pdis_end:
                raise NVIDIA_REPORT_MALFORMED("OPAQUE_FIELD_ID_SWITCH_GPU_PDIS is too short")
            out[name] = [_hex(entry.value[i : i + PDI_LENGTH]) for i in range(0, pdis_end, PDI_LENGTH)]
            out["OPAQUE_FIELD_ID_SWITCH_PORT"] = [
                _hex(entry.value[i : i + 1]) for i in range(pdis_end, len(entry.value))
            ]
        elif switch and entry.type == 23:
            out[name] = _port_bits(entry.value)
        else:
            out[name] = _hex(entry.value)
    return out


def text_field(value: bytes | None) -> str | None:
    """A NUL-terminated ASCII opaque field (driver version, project, SKU) as text."""
    if value is None:
        return None
    text = value.split(b"\x00", 1)[0]
    try:
        return text.decode("ascii")
    except UnicodeDecodeError:
        raise NVIDIA_REPORT_MALFORMED("an opaque text field is not ASCII") from None


def vbios_version(value: bytes | None, *, switch: bool) -> str | None:
    """OPAQUE_FIELD_ID_VBIOS_VERSION: ASCII on NVSwitches; on GPUs 8 raw bytes, shown the nvtrust way
    (``009f009604000000`` → ``96.00.9F.00.04``: bytes 3, 2, 1, 0 then 4, upper-case hex)."""
    if value is None:
        return None
    if switch:
        return text_field(value)
    if len(value) != 8:
        raise NVIDIA_REPORT_MALFORMED("OPAQUE_FIELD_ID_VBIOS_VERSION is not 8 bytes")
    parts = [value[3], value[2], value[1], value[0], value[4]]
    return ".".join(f"{p:02X}" for p in parts)
