"""Normalization of a verified SEV-SNP report into the broker's claim schema (docs/evidence.md "Claims produced"):
``tee``/``platform``/``measurement``/``dbgstat``/``tcb``/``report_data`` plus the namespaced raw
fields under ``snp`` (snake_case, bytes as lowercase hex, integers as numbers)."""

from __future__ import annotations

from typing import Any

from attestation_broker.evidence.snp.abi import AttestationReport, TcbVersion
from attestation_broker.evidence.snp.certs import LeafInfo


def _version(v: tuple[int, int, int]) -> dict[str, int]:
    return {"major": v[0], "minor": v[1], "build": v[2]}


def platform_hint(info: LeafInfo) -> str:
    """The VLEK cspID names the cloud that holds the key; a VCEK says nothing about the platform."""
    csp = (info.csp_id or "").lower()
    if "amazonaws.com" in csp:
        return "aws"
    if "azure" in csp or "microsoft" in csp:
        return "azure"
    if "google" in csp:
        return "gcp"
    return "unknown"


def attester_claims(
    report: AttestationReport, tcb: TcbVersion, tcb_status: str, product: str, info: LeafInfo
) -> dict[str, Any]:
    def decode(raw: int) -> dict[str, int]:
        return TcbVersion.decode(raw, product).as_dict()

    snp: dict[str, Any] = {
        "version": report.version,
        "product": product,
        "signing_key": report.signing_key_name,
        "guest_svn": report.guest_svn,
        "vmpl": report.vmpl,
        "policy": report.policy,
        "policy_bits": report.policy_bits(),
        "family_id": report.family_id.hex(),
        "image_id": report.image_id.hex(),
        "host_data": report.host_data.hex(),
        "id_key_digest": report.id_key_digest.hex(),
        "author_key_digest": report.author_key_digest.hex(),
        "author_key_en": report.author_key_en,
        "mask_chip_key": report.mask_chip_key,
        "report_id": report.report_id.hex(),
        "report_id_ma": report.report_id_ma.hex(),
        "platform_info": report.platform_info,
        "platform_info_bits": report.platform_info_bits(),
        "signature_algo": report.signature_algo,
        "current_tcb": decode(report.current_tcb_raw),
        "reported_tcb": tcb.as_dict(),
        "committed_tcb": decode(report.committed_tcb_raw),
        "launch_tcb": decode(report.launch_tcb_raw),
        "current_firmware": _version(report.current_version),
        "committed_firmware": _version(report.committed_version),
    }
    if info.kind == "vcek":
        snp["chip_id"] = report.chip_id.hex()
    else:
        snp["vlek_csp_id"] = info.csp_id
    if report.cpuid_fam_id is not None:
        snp["cpuid_fam_id"] = report.cpuid_fam_id
        snp["cpuid_mod_id"] = report.cpuid_mod_id
        snp["cpuid_step"] = report.cpuid_step
    if report.launch_mit_vector is not None:
        snp["launch_mit_vector"] = report.launch_mit_vector
        snp["current_mit_vector"] = report.current_mit_vector
    tcb_claim: dict[str, Any] = {"status": tcb_status, **tcb.as_dict()}
    return {
        "tee": "sev-snp",
        "platform": platform_hint(info),
        "measurement": report.measurement.hex(),
        "dbgstat": "enabled" if report.debug else "disabled",
        "tcb": tcb_claim,
        "report_data": report.report_data.hex(),
        "snp": snp,
    }
