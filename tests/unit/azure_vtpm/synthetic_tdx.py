"""A synthetic but self-consistent Azure TDX evidence set, signed by TEST-ONLY keys.

Real Azure TDX vectors stop at Intel collateral (their FMSPC 00806F050000 has no recorded TCB info), so
the positive end-to-end path is exercised on evidence rebuilt from them:

- HCL report: the real ``az-tdx-hcl-report-2E7D4867.bin`` (header, TDREPORT) with its runtime JSON
  replaced: ``HCLAkPub`` is a freshly generated RSA-2048 test AK and ``user-data`` is chosen by the test;
  the header/IGVM lengths follow the new JSON and TDREPORT.REPORTDATA = SHA-256(runtime JSON) ‖ 32 zeros.
  (The TDREPORT MAC cannot be checked by anyone but the TDX module, so changing REPORTDATA is consistent.)
- TD quote: the real ``az-tdx-td-quote-2E7D4867.bin`` re-signed by :class:`FakeIntelPki` (new attestation
  key, QE report signed by a test PCK leaf carrying the real FMSPC/TCB components) with its body's
  REPORTDATA set to the HCL value; MRTD/RTMRs/attributes are the real ones, which equal the HCL TDREPORT's.
- Collateral: TCB info for FMSPC 00806F050000 whose top level is exactly this platform's TCB (SGX
  components, PCE SVN, TEE TCB SVN, module TDX_01 ISV SVN 2) graded UpToDate, plus the recorded QE
  identity, re-signed by the test TCB signer; CRLs from the same test PKI.
- TPM quote: a TPMS_ATTEST (TPM 2.0 Part 2 §10.12.12) over SHA-256 PCRs 0–23 with the given extraData,
  signed RSASSA-PKCS1-v1_5/SHA-256 by the test AK (Azure ships bare signatures).

Nothing here touches the product's pinned roots: the test root reaches the verifier only through
``verify_evidence(tdx_trust=...)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker.evidence.azure_vtpm.hcl import HW_REPORT_OFFSET, IGVM_OFFSET, RUNTIME_OFFSET, parse_hcl_report
from attestation_broker.evidence.tdx import TdxCollateral
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.unit.azure_vtpm.support import az
from tests.unit.tdx.support import NOW_C1, FakeIntelPki, c1_json, shifted

NOW = NOW_C1
HCL_VECTOR = "az-tdx-hcl-report-2E7D4867.bin"
TD_QUOTE_VECTOR = "az-tdx-td-quote-2E7D4867.bin"
VM_ID = "2E7D4867-9C36-4F62-92E7-F382BF5AF756"

# This platform's TCB, read from the real quote's PCK leaf and TD quote body (TEE_TCB_SVN).
FMSPC = "00806f050000"
SGX_COMPONENTS = (6, 6, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0)
PCE_SVN = 11
TEE_TCB_SVN = (2, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
TCB_DATE = "2024-11-13T00:00:00Z"

# Offsets in the TD report 1.0 quote body (Intel TDX DCAP Quote Generation Library, Appendix "Quote format").
BODY_MRTD = 136
BODY_RTMR0 = 328
BODY_REPORT_DATA = 520
TDREPORT_REPORT_DATA = 128  # REPORTMACSTRUCT.REPORTDATA, within the TDREPORT

PCRS = tuple(hashlib.sha256(b"synthetic pcr %d" % i).digest() for i in range(24))


def _b64url(value: int | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str = "HCLAkPub") -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {"kid": kid, "key_ops": ["sign"], "kty": "RSA", "e": _b64url(numbers.e), "n": _b64url(numbers.n)}


def runtime_json(ak: rsa.RSAPrivateKey, user_data: str) -> bytes:
    """The real runtime JSON with HCLAkPub swapped for ``ak`` and ``user-data`` set (compact, as Azure)."""
    doc = dict(parse_hcl_report(az(HCL_VECTOR)).runtime_json)
    doc["keys"] = [rsa_jwk(ak) if k.get("kid") == "HCLAkPub" else k for k in doc["keys"]]
    doc["user-data"] = user_data
    return json.dumps(doc, separators=(",", ":")).encode()


def hcl_report(runtime: bytes, *, report_data: bytes | None = None) -> bytes:
    """The real TDX HCL report with ``runtime`` as its runtime data; REPORTDATA bound to it by default."""
    head = bytearray(az(HCL_VECTOR)[:RUNTIME_OFFSET])
    struct.pack_into("<I", head, 8, RUNTIME_OFFSET + len(runtime))  # report_size
    struct.pack_into("<I", head, IGVM_OFFSET, 20 + len(runtime))  # IGVM data_size
    struct.pack_into("<I", head, IGVM_OFFSET + 16, len(runtime))  # variable_data_size
    value = report_data if report_data is not None else hashlib.sha256(runtime).digest() + bytes(32)
    off = HW_REPORT_OFFSET + TDREPORT_REPORT_DATA
    head[off : off + 64] = value
    return bytes(head) + runtime + bytes(-(len(head) + len(runtime)) % 512)  # zero padding, like the NV index


def td_quote(pki: FakeIntelPki, report_data: bytes, *, body_patch: Mapping[int, bytes] | None = None) -> bytes:
    patch = {BODY_REPORT_DATA: report_data, **(body_patch or {})}
    return pki.forge(az(TD_QUOTE_VECTOR), body_patch=patch)


def collateral(pki: FakeIntelPki) -> TdxCollateral:
    info = shifted(c1_json("tcb_info_90c06f000000.json"), NOW)
    info["fmspc"] = FMSPC
    top = {
        "tcb": {
            "sgxtcbcomponents": [{"svn": v} for v in SGX_COMPONENTS],
            "pcesvn": PCE_SVN,
            "tdxtcbcomponents": [{"svn": v} for v in TEE_TCB_SVN],
        },
        "tcbDate": TCB_DATE,
        "tcbStatus": "UpToDate",
    }
    info["tcbLevels"] = [top, *info["tcbLevels"]]
    modules = []
    for module in info["tdxModuleIdentities"]:
        module = dict(module)
        if module["id"] == "TDX_01":  # TEE_TCB_SVN[1] selects the module, [0] is its ISV SVN
            level = {"tcb": {"isvsvn": TEE_TCB_SVN[0]}, "tcbDate": TCB_DATE, "tcbStatus": "UpToDate"}
            module["tcbLevels"] = [level, *module["tcbLevels"]]
        modules.append(module)
    info["tdxModuleIdentities"] = modules
    return pki.collateral(info, shifted(c1_json("qe_identity.json"), NOW))


def tpm_attest(extra_data: bytes, pcrs: tuple[bytes, ...] = PCRS) -> bytes:
    """TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE selecting SHA-256 PCRs 0..len(pcrs)-1."""
    signer = b"\x00\x0b" + hashlib.sha256(b"synthetic AK name").digest()
    bitmap = sum(1 << i for i in range(len(pcrs))).to_bytes(3, "little")
    digest = hashlib.sha256(b"".join(pcrs)).digest()
    return (
        struct.pack(">IH", 0xFF544347, 0x8018)
        + struct.pack(">H", len(signer))
        + signer
        + struct.pack(">H", len(extra_data))
        + extra_data
        + struct.pack(">QIIB", 6295632, 1, 0, 1)  # clockInfo: clock, resetCount, restartCount, safe
        + struct.pack(">Q", 0x2020_0000_0001_0003)  # firmwareVersion
        + struct.pack(">IHB", 1, 0x000B, 3)  # one selection: TPM_ALG_SHA256, sizeofSelect 3
        + bitmap
        + struct.pack(">H", len(digest))
        + digest
    )


def sign_attest(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


@dataclass(frozen=True)
class AzureTdxSet:
    """One evidence set plus the test-only anchors its verification needs."""

    pki: FakeIntelPki
    ak: rsa.RSAPrivateKey
    runtime: bytes
    hcl: bytes
    td_quote: bytes
    message: bytes
    signature: bytes
    pcrs: tuple[bytes, ...]
    collateral: TdxCollateral

    def trustee_v1(self) -> bytes:
        """The set as a trustee v1 evidence JSON (base64url blobs, hex quote parts)."""
        doc = {
            "version": 1,
            "hcl_report": base64.urlsafe_b64encode(self.hcl).decode(),
            "td_quote": base64.urlsafe_b64encode(self.td_quote).decode(),
            "tpm_quote": {
                "message": self.message.hex(),
                "signature": self.signature.hex(),
                "pcrs": [p.hex() for p in self.pcrs],
            },
        }
        return json.dumps(doc).encode()


def build(
    *,
    user_data: str = "00" * 64,
    extra_data: bytes = b"tdx challenge",
    pki: FakeIntelPki | None = None,
    ak: rsa.RSAPrivateKey | None = None,
    quote_key: rsa.RSAPrivateKey | None = None,
    body_patch: Mapping[int, bytes] | None = None,
) -> AzureTdxSet:
    """Build a consistent set; ``quote_key`` signs the TPM quote instead of the AK, ``body_patch`` edits
    the TD quote body after REPORTDATA is set (both for negative tests)."""
    pki = pki or FakeIntelPki.create()
    ak = ak or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    runtime = runtime_json(ak, user_data)
    hcl = hcl_report(runtime)
    report_data = hashlib.sha256(runtime).digest() + bytes(32)
    quote = td_quote(pki, report_data, body_patch=body_patch)
    message = tpm_attest(extra_data)
    signature = sign_attest(quote_key or ak, message)
    return AzureTdxSet(pki, ak, runtime, hcl, quote, message, signature, PCRS, collateral(pki))
