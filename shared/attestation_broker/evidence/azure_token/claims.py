"""Normalization of MAA token claims into the broker claim schema (docs/evidence.md "Claims produced").

| schema field | source |
|---|---|
| tee          | TEE ``x-ms-attestation-type``: sevsnpvm → sev-snp, tdxvm → tdx; no TEE claims (Trusted Launch) → vtpm |
| platform     | "azure" |
| measurement  | ``x-ms-sevsnpvm-launchmeasurement`` (SNP) / ``tdx_mrtd`` or ``x-ms-tdx-mrtd`` (TDX) |
| dbgstat      | ``x-ms-sevsnpvm-is-debuggable`` / ``tdx_td_attributes_debug`` (or the TEE's EAT ``dbgstat``); for a |
|              | Trusted Launch VM: any of ``x-ms-azurevm-{boot,kernel,hypervisor}debug-enabled`` |
| tcb          | status "UpToDate" when ``x-ms-compliance-status`` is ``azure-compliant-cvm`` (MAA's CVM baseline, |
|              | which grades the TCB), TDX ``attester_tcb_status`` when present, else "Unknown"; plus SVNs |
| report_data  | ``x-ms-sevsnpvm-reportdata`` / ``tdx_report_data`` |
| instance     | ``vm_id`` from ``x-ms-azurevm-vmid`` (or vm-configuration ``vmUniqueId``) |
| azure        | raw claims, ``x-ms-`` prefixes dropped, snake_case, hex lowercased |
| cnf (token)  | ``{"jwk": ...}`` public members of the first ``x-ms-runtime.keys`` entry, when present |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from attestation_broker.appraisal import TCB_STATUSES
from attestation_broker.evidence.azure_token.abi import MaaTokenClaims
from attestation_broker.evidence.azure_token.errors import AZURE_TOKEN_TEE_UNKNOWN
from attestation_broker.evidence.jose.errors import UPSTREAM_TOKEN_CLAIMS_INVALID

TEE_BY_TYPE = {"sevsnpvm": "sev-snp", "tdxvm": "tdx"}
COMPLIANT = "azure-compliant-cvm"
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_JWK_PUBLIC = ("kty", "kid", "n", "e", "crv", "x", "y", "alg", "use", "key_ops", "x5c")
_TVM_DEBUG = (
    "x-ms-azurevm-bootdebug-enabled",
    "x-ms-azurevm-kerneldebug-enabled",
    "x-ms-azurevm-hypervisordebug-enabled",
)


def snake(name: str, prefix: str = "") -> str:
    return _CAMEL.sub(r"_\1", name.removeprefix(prefix)).replace("-", "_").lower()


def _hex(value: object, name: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value) or len(value) % 2:
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' is not hex")
    return value.lower()


def _raw(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key.startswith(prefix):
            out[snake(key, prefix)] = value.lower() if isinstance(value, str) and _HEX.match(value) else value
    return out


def _tdx_claim(tee: Mapping[str, Any], name: str) -> Any:
    return tee.get(f"tdx_{name}", tee.get(f"x-ms-tdx-{name.replace('_', '-')}"))


def tee_of(claims: MaaTokenClaims) -> str:
    if claims.tee is None:
        return "vtpm"
    tee = TEE_BY_TYPE.get(claims.tee_type or "")
    if tee is None:
        raise AZURE_TOKEN_TEE_UNKNOWN(f"isolation type {str(claims.tee_type)[:32]!r} is not sevsnpvm or tdxvm")
    return tee


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' must be a boolean")
    return value


def _dbgstat(claims: MaaTokenClaims, tee: str) -> str:
    if claims.tee is None:
        flags = [claims.azurevm[name] for name in _TVM_DEBUG if name in claims.azurevm]
        if not flags:
            raise UPSTREAM_TOKEN_CLAIMS_INVALID("no x-ms-azurevm-*debug-enabled claims in a Trusted Launch token")
        return "enabled" if any(_bool(f, "x-ms-azurevm-*debug-enabled") for f in flags) else "disabled"
    if tee == "sev-snp":
        name = "x-ms-sevsnpvm-is-debuggable"
        return "enabled" if _bool(claims.tee.get(name), name) else "disabled"
    debug = _tdx_claim(claims.tee, "td_attributes_debug")
    if debug is not None:
        return "enabled" if _bool(debug, "tdx_td_attributes_debug") else "disabled"
    eat = claims.tee.get("dbgstat")
    if eat in ("disabled", "disabled-since-boot", "disabled-permanently", "disabled-fully-and-permanently"):
        return "disabled"
    if eat == "enabled":
        return "enabled"
    raise UPSTREAM_TOKEN_CLAIMS_INVALID("TDX token carries no debug attribute")


def _tcb(claims: MaaTokenClaims, tee: str) -> dict[str, Any]:
    status = "UpToDate" if claims.compliance_status == COMPLIANT else "Unknown"
    tcb: dict[str, Any] = {"status": status}
    if claims.compliance_status is not None:
        tcb["compliance_status"] = claims.compliance_status
    if claims.tee is not None and tee == "sev-snp":
        for name in ("bootloader-svn", "tee-svn", "snpfw-svn", "microcode-svn", "guestsvn"):
            value = claims.tee.get(f"x-ms-sevsnpvm-{name}")
            if value is not None:
                tcb[snake(name)] = value
    if claims.tee is not None and tee == "tdx":
        attester = claims.tee.get("attester_tcb_status")
        if attester in TCB_STATUSES:
            tcb["status"] = attester
    return tcb


def cnf_of(claims: MaaTokenClaims) -> dict[str, Any] | None:
    if not claims.runtime_keys:
        return None
    jwk = {k: v for k, v in claims.runtime_keys[0].items() if k in _JWK_PUBLIC}
    if "kty" not in jwk:
        raise UPSTREAM_TOKEN_CLAIMS_INVALID("x-ms-runtime key has no 'kty'")
    return {"jwk": jwk}


def attester_claims(claims: MaaTokenClaims) -> dict[str, Any]:
    tee = tee_of(claims)
    azure: dict[str, Any] = {
        "attestation_type": claims.attestation_type,
        "tee_attestation_type": claims.tee_type,
        "compliance_status": claims.compliance_status,
        "policy_hash": claims.policy_hash,
        "ver": claims.ver,
        "secureboot": claims.secureboot,
        "azurevm": _raw(claims.azurevm, "x-ms-azurevm-"),
        "client_payload": dict(claims.client_payload) or None,
        "runtime_key_ids": [str(k.get("kid")) for k in claims.runtime_keys] or None,
    }
    result: dict[str, Any] = {"tee": tee, "platform": "azure", "dbgstat": _dbgstat(claims, tee)}
    result["tcb"] = _tcb(claims, tee)
    if claims.tee is not None:
        if tee == "sev-snp":
            azure["sevsnpvm"] = _raw(claims.tee, "x-ms-sevsnpvm-")
            measurement = claims.tee.get("x-ms-sevsnpvm-launchmeasurement")
            report_data = claims.tee.get("x-ms-sevsnpvm-reportdata")
        else:
            tdx = {k: v for k, v in claims.tee.items() if k.startswith(("tdx_", "x-ms-tdx-"))}
            azure["tdx"] = {snake(k, "x-ms-tdx-" if k.startswith("x-ms-") else "tdx_"): v for k, v in tdx.items()}
            measurement = _tdx_claim(claims.tee, "mrtd")
            report_data = _tdx_claim(claims.tee, "report_data")
        if measurement is not None:
            result["measurement"] = _hex(measurement, "launch measurement")
        if report_data is not None:
            result["report_data"] = _hex(report_data, "report data")
        runtime = claims.tee_runtime
        vm_config = runtime.get("vm-configuration")
        if isinstance(vm_config, dict):
            azure["vm_configuration"] = {snake(k): v for k, v in vm_config.items()}
        if isinstance(runtime.get("user-data"), str):
            azure["user_data"] = runtime["user-data"].lower()
        keys = runtime.get("keys")
        if isinstance(keys, list):
            azure["tee_runtime_key_ids"] = [str(k.get("kid")) for k in keys if isinstance(k, dict)]
    vm_id = claims.azurevm.get("x-ms-azurevm-vmid")
    if not isinstance(vm_id, str):
        vm_id = azure.get("vm_configuration", {}).get("vm_unique_id")
    if isinstance(vm_id, str):
        result["instance"] = {"vm_id": vm_id}
    result["azure"] = {k: v for k, v in azure.items() if v is not None}
    return result
