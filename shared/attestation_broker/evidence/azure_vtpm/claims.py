"""Normalize verified ``azure-vtpm`` evidence into the broker claim schema.

``tee`` comes from the hardware report (``sev-snp`` / ``tdx``), ``platform`` is ``azure``; measurement,
dbgstat, tcb and report_data are the hardware verifier's (report_data = SHA-256(runtime JSON) ‖ zeros).
``instance.vm_id`` is the runtime JSON's vmUniqueId (covered by the hardware signature through the
runtime binding). ``azure`` holds the HCL facts; ``tpm`` the TPM core's quote claims.
"""

from __future__ import annotations

from typing import Any

from attestation_broker.evidence.tpm import quote_claims

from .pipeline import VerifiedAzure

_CONFIG_KEYS = {
    "secure-boot": "secure_boot",
    "tpm-enabled": "tpm_enabled",
    "console-enabled": "console_enabled",
    "tpm-persisted": "tpm_persisted",
    "root-cert-thumbprint": "root_cert_thumbprint",
    "current-time": "current_time",
    "vmUniqueId": "vm_unique_id",
}


def attester_claims(v: VerifiedAzure) -> dict[str, Any]:
    hw = v.hardware.attester_claims
    out: dict[str, Any] = {"tee": v.hardware.tee, "platform": "azure"}
    for key in ("measurement", "dbgstat", "tcb", "report_data"):
        if key in hw:
            out[key] = hw[key]
    ns = "snp" if v.hardware.tee == "sev-snp" else "tdx"
    if ns in hw:
        out[ns] = hw[ns]
    config = v.hcl.vm_configuration
    vm_config = {_CONFIG_KEYS.get(k, k.replace("-", "_")): val for k, val in sorted(config.items())}
    vm_id = config.get("vmUniqueId")
    if isinstance(vm_id, str):
        out["instance"] = {"vm_id": vm_id}
    user_data = v.hcl.user_data
    out["azure"] = {
        "hcl_version": v.hcl.version,
        "vm_configuration": vm_config,
        "vm_unique_id": vm_id,
        "user_data": user_data.lower() if user_data is not None else None,
        "runtime_keys": [k.get("kid") for k in v.hcl.runtime_json.get("keys", []) if isinstance(k, dict)],
        "ak_spki_sha256": v.ak.spki_sha256,
    }
    out["tpm"] = quote_claims(v.quote)
    return out


def verifier_claims(v: VerifiedAzure) -> dict[str, Any]:
    hw = v.hardware.verifier_claims
    claims: dict[str, Any] = {
        "evidence_kind": "azure-vtpm",
        "container": v.evidence.container,
        "collateral": list(hw.get("collateral", [])),
        "bindings": {
            "nonce": "checked" if v.nonce_checked else "not-requested",
            "runtime_data": "checked",
        },
    }
    for key in ("product", "signing_key"):
        if key in hw:
            claims[key] = hw[key]
    return claims
