"""Normalization of Google Cloud Attestation token claims into the broker claim schema.

See docs/evidence.md "Claims produced".

| schema field | source |
|---|---|
| tee          | hwmodel: GCP_AMD_SEV / _SEV_ES / _SEV_SNP → sev-snp, GCP_INTEL_TDX → tdx, GCP_SHIELDED_VM → vtpm |
| platform     | "gcp" |
| measurement  | submods.container.image_digest (hex after ``sha256:``), when present |
| dbgstat      | dbgstat: "enabled" → enabled; "disabled" / "disabled-since-boot" → disabled |
| tcb          | {"status": "Unknown"}: Google tokens carry no TCB grading |
| instance     | submods.gce: instance_id, instance_name, project_id, zone, project_number |
| gcp          | the raw claims (container ``env`` values are dropped, their names kept: they may hold secrets) |

The raw hwmodel is always kept in ``gcp.hwmodel`` (GCP_AMD_SEV is SEV without SNP's integrity protection).
"""

from __future__ import annotations

import re
from typing import Any

from attestation_broker.evidence.gcp_token.abi import GcpTokenClaims
from attestation_broker.evidence.gcp_token.errors import GCP_TOKEN_HWMODEL_UNKNOWN
from attestation_broker.evidence.jose.errors import UPSTREAM_TOKEN_CLAIMS_INVALID

TEE_BY_HWMODEL = {
    "GCP_AMD_SEV": "sev-snp",
    "GCP_AMD_SEV_ES": "sev-snp",
    "GCP_AMD_SEV_SNP": "sev-snp",
    "GCP_INTEL_TDX": "tdx",
    "GCP_SHIELDED_VM": "vtpm",
}
DBGSTAT = {"enabled": "enabled", "disabled": "disabled", "disabled-since-boot": "disabled"}
_DIGEST = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


def tee_of(hwmodel: str) -> str:
    tee = TEE_BY_HWMODEL.get(hwmodel)
    if tee is None:
        raise GCP_TOKEN_HWMODEL_UNKNOWN(f"hwmodel {hwmodel[:64]!r} is not a known Google hardware model")
    return tee


def dbgstat_of(value: str) -> str:
    mapped = DBGSTAT.get(value)
    if mapped is None:
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"dbgstat {value[:32]!r} is not a known value")
    return mapped


def image_measurement(claims: GcpTokenClaims) -> str | None:
    digest = claims.container.get("image_digest")
    if digest is None:
        return None
    match = _DIGEST.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise UPSTREAM_TOKEN_CLAIMS_INVALID("container image_digest is not sha256:<64 hex>")
    return match.group(1).lower()


def _container(container: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in container.items() if k != "env"}
    env = container.get("env")
    if isinstance(env, dict):
        out["env_names"] = sorted(str(k) for k in env)
    return out


def attester_claims(claims: GcpTokenClaims) -> dict[str, Any]:
    gce = dict(claims.gce)
    instance = {
        key: gce[src]
        for key, src in (
            ("id", "instance_id"),
            ("name", "instance_name"),
            ("project", "project_id"),
            ("zone", "zone"),
            ("project_number", "project_number"),
        )
        if src in gce
    }
    raw: dict[str, Any] = {
        "hwmodel": claims.hwmodel,
        "swname": claims.swname,
        "swversion": list(claims.swversion),
        "dbgstat": claims.dbgstat,
        "secboot": claims.secboot,
        "oemid": claims.oemid,
        "eat_profile": claims.eat_profile,
        "subject": claims.subject,
        "eat_nonce": list(claims.eat_nonce),
        "gce": gce,
        "confidential_space": dict(claims.confidential_space),
        "container": _container(dict(claims.container)),
        "google_service_accounts": list(claims.google_service_accounts),
    }
    result: dict[str, Any] = {
        "tee": tee_of(claims.hwmodel),
        "platform": "gcp",
        "dbgstat": dbgstat_of(claims.dbgstat),
        "tcb": {"status": "Unknown"},
        "gcp": {k: v for k, v in raw.items() if v is not None},
    }
    measurement = image_measurement(claims)
    if measurement is not None:
        result["measurement"] = measurement
    if instance:
        result["instance"] = instance
    return result
