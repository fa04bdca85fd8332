"""``gcp-token`` fact grading into registered AR4SI values (draft-ietf-rats-ar4si §2.3). Facts only: image
digests, hardware models, projects and debug are rules of the policy engine (docs/policy.md); the kind always
grades with :data:`FACTS`.

| claim             | value |
|-------------------|-------|
| instance-identity | 2 when ``aud`` matched ``settings.upstream_audiences``; 0 (no claim) when none are configured |
| hardware          | 2: Google attested the hwmodel |
| runtime-opaque    | 2 encrypted; 96 (visible) for a debug image |
| executables       | 33 (unrecognized) until a policy's reference values match (then 3) |
| configuration     | 2 with secure boot; 32 (known vulnerabilities) without (the built-in default requires it) |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.evidence.gcp_token.checks import VerifiedGcpToken
from attestation_broker.evidence.jose.verifier import Verdict

KIND = "gcp-token"
_KEYS = ("allow_debug", "require_secure_boot", "image_digests", "hwmodels")


@dataclass(frozen=True)
class GcpTokenPolicy:
    id: str
    allow_debug: bool = False
    require_secure_boot: bool = True
    image_digests: tuple[str, ...] = ()
    hwmodels: tuple[str, ...] = ()


# Grading parameters the kind always uses; the operator's policy is applied by the policy engine.
FACTS = GcpTokenPolicy(id=KIND, require_secure_boot=False)


def appraise(token: VerifiedGcpToken, claims: Mapping[str, Any], policy: GcpTokenPolicy) -> Verdict:
    vector: dict[str, int] = {}
    findings: list[str] = []

    if token.audience.matched is not None:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
    else:
        vector["instance-identity"] = ar4si.NO_CLAIM
        findings.append("no accepted audiences configured: token audience recorded but not checked")

    hwmodel = token.claims.hwmodel
    if policy.hwmodels and hwmodel not in policy.hwmodels:
        vector["hardware"] = ar4si.HW_CONTRAINDICATED
        findings.append(f"hwmodel {hwmodel} is not allowed by policy")
    else:
        vector["hardware"] = ar4si.HW_GENUINE

    if claims["dbgstat"] == "enabled":
        vector["runtime-opaque"] = ar4si.RUNTIME_VISIBLE
        findings.append("debug is enabled (dbgstat)")
    else:
        vector["runtime-opaque"] = ar4si.RUNTIME_ENCRYPTED

    measurement = claims.get("measurement")
    if not policy.image_digests:
        vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    elif measurement in policy.image_digests:
        vector["executables"] = ar4si.EXEC_APPROVED_RUNTIME
    else:
        vector["executables"] = ar4si.EXEC_CONTRAINDICATED
        findings.append("container image digest is not in the policy allow-list")

    if token.claims.secboot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    else:
        vector["configuration"] = ar4si.CONFIG_CONTRAINDICATED if policy.require_secure_boot else ar4si.CONFIG_UNSAFE
        findings.append("secure boot is not reported enabled (secboot)")
    return Verdict(vector, tuple(findings))
