"""Per-kind evidence collection inside the guest, and the JSON envelope each kind's verifier reads.

Every binding is computed with :class:`attestation_broker.binding.ExpectedBinding`, the very functions the
broker checks with, so the two sides cannot drift:

| kind       | where the binding goes                              | ExpectedBinding method                    |
|------------|-----------------------------------------------------|-------------------------------------------|
| snp, tdx   | configfs-tsm ``inblob`` (REPORT_DATA / REPORTDATA)  | ``report_data()``                         |
| tpm        | TPM2_Quote qualifying data                          | ``tpm_extra_data()``                      |
| azure-vtpm | NV 0x01400002 (HCL ``user-data``) + quote extraData | ``azure_user_data()``, ``tpm_extra_data()`` |
| gcp-vtpm   | quote extraData per bank + TEE report ``inblob``    | ``tpm_extra_data()``, ``report_data()``   |

Envelopes follow each kind's documented fields (``evidence/<kind>/kind.py`` / ``inputs.py`` / ``envelope.py``).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attestation_broker.binding import ExpectedBinding
from attestation_broker.client import tsm
from attestation_broker.client.errors import (
    CLIENT_EVENT_LOG_UNREADABLE,
    CLIENT_IMDS_UNAVAILABLE,
    CLIENT_KIND_UNSUPPORTED,
    CLIENT_NO_PLATFORM,
    CLIENT_SNP_CERTS_MISSING,
)
from attestation_broker.client.gcp import GCE_AK_CERT_NV_ECC, GCE_AK_CERT_NV_RSA, build_attestation
from attestation_broker.client.tpm import Tpm
from attestation_broker.errors import BrokerError

EVENT_LOG = Path("/sys/kernel/security/tpm0/binary_bios_measurements")
DEFAULT_AK_HANDLE = 0x81010002  # tpm2-tools' conventional AK handle (EK at 0x81010001)
DEFAULT_TPM_PCRS = tuple(range(8))  # firmware, boot loader and Secure Boot state: replayable from the TCG log
ALL_PCRS = tuple(range(24))

# Azure CVM vTPM (learn.microsoft.com "Azure confidential VMs: guest attestation"; az-cvm-vtpm)
AZURE_HCL_REPORT_NV = 0x01400001
AZURE_USER_DATA_NV = 0x01400002
AZURE_AK_HANDLE = 0x81000003
AZURE_IMDS = "http://169.254.169.254"


ImdsFetch = Callable[[str, str, bytes | None, dict[str, str]], bytes]


def _imds_fetch(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - fixed http IMDS URL
            data: bytes = response.read(1024 * 1024)
            return data
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise CLIENT_IMDS_UNAVAILABLE(f"{url}: {getattr(exc, 'reason', exc)}") from None


@dataclass(frozen=True)
class Machine:
    """Where this guest's evidence comes from (all injectable: tests point them at stand-ins)."""

    tsm_root: Path = tsm.DEFAULT_TSM_ROOT
    tsm_files: tsm.TsmFiles = field(default=tsm.OS_FILES, compare=False)
    tcti: str | None = None
    ak_handle: int = DEFAULT_AK_HANDLE
    event_log: Path = EVENT_LOG
    privlevel: int | None = None
    pcrs: tuple[int, ...] = DEFAULT_TPM_PCRS
    imds_url: str = AZURE_IMDS
    imds_fetch: ImdsFetch = field(default=_imds_fetch, compare=False)
    tpm_factory: Callable[[str | None], Tpm] = field(default=Tpm, compare=False)

    def tpm(self) -> Tpm:
        tpm = self.tpm_factory(self.tcti)
        tpm.check_available()
        return tpm


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def read_event_log(path: Path) -> bytes | None:
    """The TCG firmware event log from securityfs; None when this machine exposes none."""
    try:
        return path.read_bytes() or None
    except FileNotFoundError:
        return None
    except PermissionError:
        raise CLIENT_EVENT_LOG_UNREADABLE(f"no permission to read {path} (run as root)") from None
    except OSError as exc:
        raise CLIENT_EVENT_LOG_UNREADABLE(f"{path}: {exc.strerror}") from None


# --- detection -------------------------------------------------------------------------------------


def detect(machine: Machine) -> str:
    """Pick the kind for this machine: a cloud vTPM (Azure HCL report / GCE AK certificate in NV) first,
    since its evidence also covers the TEE; then a configfs-tsm provider; then a plain TPM."""
    tpm: Tpm | None = None
    try:
        tpm = machine.tpm()
        indices = tpm.nv_indices()
    except BrokerError:
        tpm, indices = None, set()
    if AZURE_HCL_REPORT_NV in indices:
        return "azure-vtpm"
    if indices & {GCE_AK_CERT_NV_RSA, GCE_AK_CERT_NV_ECC}:
        return "gcp-vtpm"
    if tsm.available(machine.tsm_root, machine.tsm_files):
        provider = tsm.probe_provider(machine.tsm_root, machine.tsm_files)
        for kind, name in tsm.PROVIDERS.items():
            if provider == name:
                return kind
    if tpm is not None:
        return "tpm"
    raise CLIENT_NO_PLATFORM(
        f"no configfs-tsm provider under {machine.tsm_root} and no TPM "
        f"({'--tcti ' + machine.tcti if machine.tcti else '/dev/tpmrm0'})"
    )


# --- per kind --------------------------------------------------------------------------------------


def collect_snp(binding: ExpectedBinding, machine: Machine) -> dict[str, Any]:
    from attestation_broker.evidence.snp.abi import SIGNING_KEY_VLEK, parse_cert_table, parse_report

    report = tsm.get_report(
        binding.report_data(),
        root=machine.tsm_root,
        kind="snp",
        privlevel=machine.privlevel,
        files=machine.tsm_files,
    )
    envelope: dict[str, Any] = {"evidence": b64(report.outblob)}
    entries = parse_cert_table(report.auxblob) if any(report.auxblob) else ()
    for entry in entries:
        if entry.role in ("vcek", "vlek", "ask", "asvk") and entry.data:
            envelope[entry.role] = b64(entry.data)
    leafless = "vcek" not in envelope and "vlek" not in envelope
    if leafless and parse_report(report.outblob).signing_key == SIGNING_KEY_VLEK:
        # A VCEK can be fetched by the broker from AMD KDS; a VLEK only comes from the host.
        raise CLIENT_SNP_CERTS_MISSING("VLEK-signed report but the auxblob certificate table has no VLEK")
    return envelope


def collect_tdx(binding: ExpectedBinding, machine: Machine) -> dict[str, Any]:
    report = tsm.get_report(binding.report_data(), root=machine.tsm_root, kind="tdx", files=machine.tsm_files)
    return {"evidence": b64(report.outblob)}


def collect_tpm(binding: ExpectedBinding, machine: Machine) -> dict[str, Any]:
    tpm = machine.tpm()
    ak_public = tpm.read_public(machine.ak_handle)
    quote = tpm.quote(machine.ak_handle, binding.tpm_extra_data(), pcrs=machine.pcrs)
    envelope: dict[str, Any] = {
        "evidence": b64(quote.message),
        "signature": b64(quote.signature),
        "ak_public": b64(ak_public),
        "pcrs": b64(quote.pcrs),
    }
    log = read_event_log(machine.event_log)
    if log is not None:
        envelope["event_log"] = b64(log)
    return envelope


def _pcr_list(pcr_file: bytes, bank: str) -> list[str]:
    from attestation_broker.evidence.tpm.pcrfiles import pcrs_from_tpm2tools

    values = pcrs_from_tpm2tools(pcr_file)[bank]
    return [values[i].hex() for i in sorted(values)]


def collect_azure_vtpm(binding: ExpectedBinding, machine: Machine) -> dict[str, Any]:
    """The documented Azure flow: user data → NV 0x01400002 (the HCL refreshes the report), HCL report ←
    NV 0x01400001, a quote by the HCL AK at 0x81000003, and the hardware evidence the HCL report needs
    verifying with (TDX: the TD quote for its TDREPORT from IMDS ``/acc/tdquote``; SNP: the VCEK from IMDS
    ``/metadata/THIM/amd/certification``)."""
    from attestation_broker.evidence.azure_vtpm.hcl import REPORT_TYPE_TDX, parse_hcl_report

    tpm = machine.tpm()
    if not tpm.has_nv(AZURE_HCL_REPORT_NV):
        tpm.nv_read(AZURE_HCL_REPORT_NV, what="Azure HCL report: not an Azure confidential VM")
    if not tpm.has_nv(AZURE_USER_DATA_NV):
        tpm.nv_define(AZURE_USER_DATA_NV, 64)
    tpm.nv_write(AZURE_USER_DATA_NV, binding.azure_user_data())
    hcl_raw = tpm.nv_read(AZURE_HCL_REPORT_NV, what="Azure HCL report")
    hcl = parse_hcl_report(hcl_raw)
    tpm.read_public(AZURE_AK_HANDLE)
    quote = tpm.quote(AZURE_AK_HANDLE, binding.tpm_extra_data(), pcrs=ALL_PCRS)
    doc: dict[str, Any] = {
        "version": 1,
        "hcl_report": b64url(hcl_raw),
        "tpm_quote": {
            "message": quote.message.hex(),
            "signature": quote.signature.hex(),
            "pcrs": _pcr_list(quote.pcrs, "sha256"),
        },
    }
    base = machine.imds_url.rstrip("/")
    if hcl.report_type == REPORT_TYPE_TDX:
        body = json.dumps({"report": b64url(hcl.hw_report).rstrip("=")}).encode()
        answer = machine.imds_fetch("POST", base + "/acc/tdquote", body, {"Content-Type": "application/json"})
        try:
            quote_b64 = json.loads(answer)["quote"]
            td_quote = base64.urlsafe_b64decode(quote_b64 + "=" * (-len(quote_b64) % 4))
        except (ValueError, KeyError, TypeError):
            raise CLIENT_IMDS_UNAVAILABLE("IMDS /acc/tdquote answered without a quote") from None
        doc["td_quote"] = b64url(td_quote)
    else:
        answer = machine.imds_fetch("GET", base + "/metadata/THIM/amd/certification", None, {"Metadata": "true"})
        try:
            certs = json.loads(answer)
            vcek_pem = str(certs["vcekCert"])
        except (ValueError, KeyError, TypeError):
            raise CLIENT_IMDS_UNAVAILABLE("IMDS THIM answered without a VCEK") from None
        doc["vcek"] = b64url(_pem_to_der(vcek_pem))
    return {"evidence": b64(json.dumps(doc).encode())}


def _pem_to_der(pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)


def collect_gcp_vtpm(binding: ExpectedBinding, machine: Machine) -> dict[str, Any]:
    """go-tpm-tools ``Attestation`` (see :mod:`.gcp`); on a Confidential VM (configfs-tsm present) with the
    SEV-SNP/TDX report bound to the same nonce."""
    tpm = machine.tpm()
    tee = None
    if tsm.available(machine.tsm_root, machine.tsm_files):
        tee = tsm.get_report(
            binding.report_data(), root=machine.tsm_root, privlevel=machine.privlevel, files=machine.tsm_files
        )
    attestation = build_attestation(tpm, binding, event_log=read_event_log(machine.event_log), tee=tee)
    return {"evidence": b64(attestation.SerializeToString())}


COLLECTORS: dict[str, Callable[[ExpectedBinding, Machine], dict[str, Any]]] = {
    "snp": collect_snp,
    "tdx": collect_tdx,
    "tpm": collect_tpm,
    "azure-vtpm": collect_azure_vtpm,
    "gcp-vtpm": collect_gcp_vtpm,
}


def collect(kind: str, binding: ExpectedBinding, machine: Machine) -> dict[str, Any]:
    """The JSON envelope (without nonce/user data) for ``kind``, bound to ``binding``."""
    collector = COLLECTORS.get(kind)
    if collector is None:
        raise CLIENT_KIND_UNSUPPORTED(f"the client collects {', '.join(COLLECTORS)}; not {kind!r}")
    return collector(binding, machine)
