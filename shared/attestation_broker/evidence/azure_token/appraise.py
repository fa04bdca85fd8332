"""``azure-token`` fact grading into registered AR4SI values (draft-ietf-rats-ar4si §2.3). Facts only: launch
measurements, compliance statuses, Trusted Launch and debug are rules of the policy engine (docs/policy.md);
the kind always grades with :data:`FACTS`.

| claim             | value |
|-------------------|-------|
| instance-identity | 2 when the nonce binding was checked or ``aud`` matched an accepted audience; else 0 |
| hardware          | 2 when the compliance status is ``azure-compliant-cvm`` (or Trusted Launch); else 97 |
| runtime-opaque    | 2 encrypted; 96 (visible) when debuggable; 32 (isolated) for a Trusted Launch VM (no TEE), |
|                   | which the built-in default refuses |
| executables       | 33 (unrecognized) until a policy's reference values match (then 3) |
| configuration     | 2 with secure boot; 32 when off; 0 (no claim) when not reported |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.evidence.azure_token.checks import VerifiedMaaToken
from attestation_broker.evidence.azure_token.claims import COMPLIANT
from attestation_broker.evidence.jose.verifier import Verdict

KIND = "azure-token"
_KEYS = ("allow_debug", "require_secure_boot", "allow_trusted_launch", "launch_measurements", "compliance_statuses")


@dataclass(frozen=True)
class AzureTokenPolicy:
    id: str
    allow_debug: bool = False
    require_secure_boot: bool = True
    allow_trusted_launch: bool = False
    launch_measurements: tuple[str, ...] = ()
    compliance_statuses: tuple[str, ...] = (COMPLIANT,)


# Grading parameters the kind always uses; the operator's policy is applied by the policy engine.
FACTS = AzureTokenPolicy(id=KIND, require_secure_boot=False)


def appraise(token: VerifiedMaaToken, claims: Mapping[str, Any], policy: AzureTokenPolicy) -> Verdict:
    vector: dict[str, int] = {}
    findings: list[str] = []
    maa = token.claims

    if token.nonce_checked or token.audience.matched is not None:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
    else:
        vector["instance-identity"] = ar4si.NO_CLAIM
        findings.append("token is bound to neither a broker nonce nor an accepted audience")

    trusted_launch = maa.tee is None
    if trusted_launch or maa.compliance_status in policy.compliance_statuses:
        vector["hardware"] = ar4si.HW_GENUINE
    else:
        vector["hardware"] = ar4si.HW_UNRECOGNIZED
        findings.append(f"MAA compliance status {str(maa.compliance_status)[:40]} is not accepted by policy")

    if trusted_launch:
        # Hypervisor isolation from other guests, no memory encryption against the host: "isolated" (32).
        vector["runtime-opaque"] = ar4si.RUNTIME_ISOLATED
        findings.append("Trusted Launch VM: no confidential-computing isolation (x-ms-isolation-tee absent)")
    elif claims["dbgstat"] == "enabled":
        vector["runtime-opaque"] = ar4si.RUNTIME_VISIBLE
        findings.append("the TEE is debuggable")
    else:
        vector["runtime-opaque"] = ar4si.RUNTIME_ENCRYPTED
    if trusted_launch and claims["dbgstat"] == "enabled" and not policy.allow_debug:
        vector["runtime-opaque"] = ar4si.RUNTIME_CONTRAINDICATED
        findings.append("OS, boot or hypervisor debugging is enabled")

    measurement = claims.get("measurement")
    if not policy.launch_measurements:
        vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    elif measurement in policy.launch_measurements:
        vector["executables"] = ar4si.EXEC_APPROVED_BOOT
    else:
        vector["executables"] = ar4si.EXEC_CONTRAINDICATED
        findings.append("launch measurement is not in the policy allow-list")

    if maa.secureboot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    elif maa.secureboot is False:
        vector["configuration"] = ar4si.CONFIG_CONTRAINDICATED if policy.require_secure_boot else ar4si.CONFIG_UNSAFE
        findings.append("secure boot is off")
    else:
        vector["configuration"] = ar4si.NO_CLAIM
        findings.append("secure boot state is not reported")
    return Verdict(vector, tuple(findings))
