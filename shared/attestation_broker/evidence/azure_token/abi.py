"""Typed view of a verified Microsoft Azure Attestation (MAA) token payload.

Claim sets (Microsoft "Azure Attestation claim sets", guest attestation protocol 1.0/2.0, the SEV-SNP and
TDX EAT profiles):

* guest attestation (``x-ms-attestation-type: azurevm``): ``x-ms-azurevm-*`` boot/OS facts, ``secureboot``,
  optional ``x-ms-isolation-tee`` (a CVM) holding the TEE claims, ``x-ms-runtime`` (client payload, keys);
* direct TEE attestation (``x-ms-attestation-type: sevsnpvm | tdxvm``): the TEE claims are top-level.

TEE claims: ``x-ms-attestation-type`` (sevsnpvm | tdxvm), ``x-ms-compliance-status``, ``x-ms-sevsnpvm-*``
(launchmeasurement, reportdata, is-debuggable, vmpl, SVNs ...), TDX ``tdx_*`` / ``x-ms-tdx-*`` (mrtd,
report_data, td_attributes_debug ...), and ``x-ms-runtime`` (``keys``, ``vm-configuration``, ``user-data``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker.evidence.jose.errors import UPSTREAM_TOKEN_CLAIMS_INVALID

ISOLATION_TYPES = ("sevsnpvm", "tdxvm")


def _obj(container: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = container.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' must be an object")
    return value


def _opt_str(container: Mapping[str, Any], name: str) -> str | None:
    value = container.get(name)
    if value is not None and not isinstance(value, str):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' must be a string")
    return value


def _keys(runtime: Mapping[str, Any], where: str) -> tuple[Mapping[str, Any], ...]:
    keys = runtime.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{where}.keys' must be a list of JWK objects")
    return tuple(keys)


@dataclass(frozen=True)
class MaaTokenClaims:
    attestation_type: str | None
    # The TEE claims (x-ms-isolation-tee, or the top level for direct SNP/TDX attestation); None for a
    # Trusted Launch (non-confidential) VM.
    tee: Mapping[str, Any] | None
    tee_type: str | None
    compliance_status: str | None
    azurevm: Mapping[str, Any] = field(default_factory=dict)
    secureboot: bool | None = None
    policy_hash: str | None = None
    ver: str | None = None
    client_payload: Mapping[str, Any] = field(default_factory=dict)
    runtime_keys: tuple[Mapping[str, Any], ...] = ()
    tee_runtime: Mapping[str, Any] = field(default_factory=dict)

    def client_nonces(self) -> tuple[str, ...]:
        nonce = self.client_payload.get("nonce")
        return (nonce,) if isinstance(nonce, str) else ()


def parse_claims(payload: Mapping[str, Any]) -> MaaTokenClaims:
    attestation_type = _opt_str(payload, "x-ms-attestation-type")
    tee: Mapping[str, Any] | None
    if "x-ms-isolation-tee" in payload:
        tee = _obj(payload, "x-ms-isolation-tee")
    elif attestation_type in ISOLATION_TYPES:
        tee = payload
    else:
        tee = None
    tee_type = _opt_str(tee, "x-ms-attestation-type") if tee is not None else None
    compliance = _opt_str(tee, "x-ms-compliance-status") if tee is not None else None
    secureboot = payload.get("secureboot")
    if secureboot is not None and not isinstance(secureboot, bool):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID("'secureboot' must be a boolean")
    runtime = _obj(payload, "x-ms-runtime")
    tee_runtime = _obj(tee, "x-ms-runtime") if tee is not None and tee is not payload else {}
    if tee_runtime:
        _keys(tee_runtime, "x-ms-isolation-tee.x-ms-runtime")
    return MaaTokenClaims(
        attestation_type=attestation_type,
        tee=tee,
        tee_type=tee_type,
        compliance_status=compliance,
        azurevm={k: v for k, v in payload.items() if k.startswith("x-ms-azurevm-")},
        secureboot=secureboot,
        policy_hash=_opt_str(payload, "x-ms-policy-hash"),
        ver=_opt_str(payload, "x-ms-ver"),
        client_payload=_obj(runtime, "client-payload"),
        runtime_keys=_keys(runtime, "x-ms-runtime"),
        tee_runtime=tee_runtime,
    )
