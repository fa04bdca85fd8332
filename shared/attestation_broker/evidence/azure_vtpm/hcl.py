"""Azure HCL report parsing (content of vTPM NV index 0x01400001; integers little-endian).

Layout (MANIFEST-vtpm-cloud.md "Azure HCL report", Microsoft IGVM attestation report layout):

| offset | size | field                                                                  |
|--------|------|------------------------------------------------------------------------|
| 0      | 32   | header: "HCLA", version u32 (1|2), report_size u32, request_type u32 (2), status u32, 12 reserved |
| 32     | 1184 | hardware report: SEV-SNP ATTESTATION_REPORT, or TDX TDREPORT (1024) + unused |
| 1216   | 20   | IGVM request data: data_size u32, version u32 (1), report_type u32 (2 SNP, 4 TDX), |
|        |      | hash_type u32 (1 SHA-256), variable_data_size u32                      |
| 1236   | var  | runtime data: UTF-8 JSON {"keys": [HCLAkPub, ...], "vm-configuration": {...}, "user-data": hex} |

Buffers are zero-padded (2048/2600 bytes): lengths come from the header, never from the buffer size.
Binding (checked here, :func:`check_runtime_binding`): SHA-256(runtime bytes as stored) ==
REPORT_DATA[0:32] and REPORT_DATA[32:64] are zero. SNP REPORT_DATA is report offset 0x50; TDX
REPORTDATA is TDREPORT offset 128 (REPORTMACSTRUCT).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import jsonlimits

from .errors import (
    AZURE_VTPM_HCL_MALFORMED,
    AZURE_VTPM_HCL_UNSUPPORTED,
    AZURE_VTPM_RUNTIME_BINDING_MISMATCH,
    AZURE_VTPM_RUNTIME_MALFORMED,
)

MAGIC = b"HCLA"
HEADER_SIZE = 32
HW_REPORT_OFFSET = 32
HW_REPORT_SIZE = 1184
IGVM_OFFSET = HW_REPORT_OFFSET + HW_REPORT_SIZE  # 1216
IGVM_SIZE = 20
RUNTIME_OFFSET = IGVM_OFFSET + IGVM_SIZE  # 1236
MAX_RUNTIME = 64 * 1024

REPORT_TYPE_SNP = 2
REPORT_TYPE_TDX = 4
HASH_SHA256 = 1

SNP_REPORT_SIZE = 1184
SNP_REPORT_DATA = slice(0x50, 0x90)
SNP_VMPL_OFFSET = 0x30
TDREPORT_SIZE = 1024
TDX_REPORT_DATA = slice(128, 192)


@dataclass(frozen=True)
class TdReport:
    """The TDINFO part of a TDREPORT (TDX module ABI, TDREPORT_STRUCT), offsets within the TDREPORT."""

    report_data: bytes  # 128..192 (REPORTMACSTRUCT.REPORTDATA)
    attributes: bytes  # 512
    xfam: bytes  # 520
    mrtd: bytes  # 528
    mrconfigid: bytes  # 576
    mrowner: bytes  # 624
    mrownerconfig: bytes  # 672
    rtmrs: tuple[bytes, bytes, bytes, bytes]  # 720, 768, 816, 864


@dataclass(frozen=True)
class HclReport:
    version: int
    report_size: int
    request_type: int
    status: int
    report_type: int  # 2 SNP, 4 TDX
    hash_type: int
    hw_report: bytes  # SNP: 1184 bytes; TDX: the 1024-byte TDREPORT
    runtime: bytes  # exactly variable_data_size bytes as stored
    runtime_json: Mapping[str, Any]

    @property
    def tee(self) -> str:
        return "sev-snp" if self.report_type == REPORT_TYPE_SNP else "tdx"

    @property
    def report_data(self) -> bytes:
        window = SNP_REPORT_DATA if self.report_type == REPORT_TYPE_SNP else TDX_REPORT_DATA
        return self.hw_report[window]

    @property
    def snp_vmpl(self) -> int:
        return int(struct.unpack_from("<I", self.hw_report, SNP_VMPL_OFFSET)[0])

    def td_report(self) -> TdReport:
        r = self.hw_report
        return TdReport(
            report_data=r[128:192],
            attributes=r[512:520],
            xfam=r[520:528],
            mrtd=r[528:576],
            mrconfigid=r[576:624],
            mrowner=r[624:672],
            mrownerconfig=r[672:720],
            rtmrs=(r[720:768], r[768:816], r[816:864], r[864:912]),
        )

    def ak_jwk(self) -> Mapping[str, Any]:
        """The ``HCLAkPub`` JWK of the runtime data."""
        for key in self.runtime_json.get("keys", []):
            if isinstance(key, Mapping) and key.get("kid") == "HCLAkPub":
                return key
        raise AZURE_VTPM_RUNTIME_MALFORMED("runtime data has no HCLAkPub key")

    @property
    def vm_configuration(self) -> Mapping[str, Any]:
        value = self.runtime_json.get("vm-configuration", {})
        if not isinstance(value, Mapping):
            raise AZURE_VTPM_RUNTIME_MALFORMED("vm-configuration is not an object")
        return value

    @property
    def user_data(self) -> str | None:
        value = self.runtime_json.get("user-data")
        if value is None:
            return None
        if not isinstance(value, str):
            raise AZURE_VTPM_RUNTIME_MALFORMED("user-data is not a string")
        return value


def looks_like_hcl(data: bytes) -> bool:
    return data[:4] == MAGIC


def parse_hcl_report(data: bytes) -> HclReport:
    """Parse an HCL report using its own length fields; trailing padding is ignored."""
    if len(data) < RUNTIME_OFFSET:
        raise AZURE_VTPM_HCL_MALFORMED(f"HCL report is {len(data)} bytes, shorter than its fixed part")
    magic, version, report_size, request_type, status = struct.unpack_from("<4sIIII", data, 0)
    if magic != MAGIC:
        raise AZURE_VTPM_HCL_MALFORMED("HCL report signature is not HCLA")
    if version not in (1, 2):
        raise AZURE_VTPM_HCL_UNSUPPORTED(f"HCL report version {version}")
    data_size, igvm_version, report_type, hash_type, var_size = struct.unpack_from("<IIIII", data, IGVM_OFFSET)
    if igvm_version != 1:
        raise AZURE_VTPM_HCL_UNSUPPORTED(f"IGVM request data version {igvm_version}")
    if report_type not in (REPORT_TYPE_SNP, REPORT_TYPE_TDX):
        raise AZURE_VTPM_HCL_UNSUPPORTED(f"HCL hardware report type {report_type}")
    if hash_type != HASH_SHA256:
        raise AZURE_VTPM_HCL_UNSUPPORTED(f"runtime data hash type {hash_type}")
    if var_size == 0 or var_size > MAX_RUNTIME:
        raise AZURE_VTPM_HCL_MALFORMED(f"runtime data size {var_size}")
    if data_size != IGVM_SIZE + var_size:
        raise AZURE_VTPM_HCL_MALFORMED("IGVM data_size disagrees with variable_data_size")
    if report_size != RUNTIME_OFFSET + var_size:
        raise AZURE_VTPM_HCL_MALFORMED("HCL report_size disagrees with the runtime data size")
    if len(data) < report_size:
        raise AZURE_VTPM_HCL_MALFORMED(f"HCL report is truncated ({len(data)} < {report_size} bytes)")
    hw_size = SNP_REPORT_SIZE if report_type == REPORT_TYPE_SNP else TDREPORT_SIZE
    hw_report = data[HW_REPORT_OFFSET : HW_REPORT_OFFSET + hw_size]
    runtime = data[RUNTIME_OFFSET : RUNTIME_OFFSET + var_size]
    return HclReport(
        version=version,
        report_size=report_size,
        request_type=request_type,
        status=status,
        report_type=report_type,
        hash_type=hash_type,
        hw_report=hw_report,
        runtime=runtime,
        runtime_json=_parse_runtime(runtime),
    )


def _parse_runtime(runtime: bytes) -> Mapping[str, Any]:
    value = jsonlimits.loads(runtime, AZURE_VTPM_RUNTIME_MALFORMED, "runtime data")
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise AZURE_VTPM_RUNTIME_MALFORMED("runtime data is not an object with a keys list")
    return value


def check_runtime_binding(report: HclReport) -> bytes:
    """Raise unless REPORT_DATA == SHA-256(runtime) ‖ 32 zero bytes; return that 64-byte value."""
    expected = hashlib.sha256(report.runtime).digest() + bytes(32)
    if not hmac.compare_digest(report.report_data, expected):
        raise AZURE_VTPM_RUNTIME_BINDING_MISMATCH("runtime data does not hash to the hardware REPORT_DATA")
    return expected
