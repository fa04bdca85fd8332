"""``gcp-token`` policy and appraisal into an AR4SI trustworthiness vector (draft-ietf-rats-ar4si §2.3).

Policy section (all keys optional; unknown keys → POLICY_INVALID)::

    {"id": "...", "allow_debug": false, "require_secure_boot": true,
     "image_digests": ["sha256:<hex>" | "<hex>", ...], "hwmodels": ["GCP_INTEL_TDX", ...]}

| claim             | value |
|-------------------|-------|
| instance-identity | trusted when ``aud`` matched ``settings.upstream_audiences``; WARNING when none are configured |
| hardware          | genuine (Google attested the hwmodel); contraindicated when not in ``hwmodels`` |
| runtime-opaque    | encrypted; debug → contraindicated, or visible (warning) with ``allow_debug`` |
| executables       | approved-runtime when the image digest is allow-listed, else contraindicated; |
|                   | unrecognized when the policy has no list |
| configuration     | approved with secure boot; without: contraindicated (unsafe if not ``require_secure_boot``) |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_INVALID
from attestation_broker.evidence.gcp_token.checks import VerifiedGcpToken
from attestation_broker.evidence.jose.policy import get_bool, get_str_list, policy_id, reject_unknown

KIND = "gcp-token"
_KEYS = ("allow_debug", "require_secure_boot", "image_digests", "hwmodels")


@dataclass(frozen=True)
class GcpTokenPolicy:
    id: str
    allow_debug: bool = False
    require_secure_boot: bool = True
    image_digests: tuple[str, ...] = ()
    hwmodels: tuple[str, ...] = ()

    @classmethod
    def parse(cls, section: Mapping[str, Any]) -> GcpTokenPolicy:
        reject_unknown(KIND, section, _KEYS)
        digests = []
        for value in get_str_list(KIND, section, "image_digests", lower=True):
            hexpart = value.removeprefix("sha256:")
            if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
                raise POLICY_INVALID(f"{KIND} policy image digest {value[:80]!r} is not sha256:<64 hex>")
            digests.append(hexpart)
        return cls(
            id=policy_id(KIND, section),
            allow_debug=get_bool(KIND, section, "allow_debug", False),
            require_secure_boot=get_bool(KIND, section, "require_secure_boot", True),
            image_digests=tuple(digests),
            hwmodels=get_str_list(KIND, section, "hwmodels"),
        )


@dataclass(frozen=True)
class Verdict:
    vector: dict[str, int]
    findings: tuple[str, ...]


def appraise(token: VerifiedGcpToken, claims: Mapping[str, Any], policy: GcpTokenPolicy) -> Verdict:
    vector: dict[str, int] = {}
    findings: list[str] = []

    if token.audience.matched is not None:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
    else:
        vector["instance-identity"] = ar4si.WARNING
        findings.append("no accepted audiences configured: token audience recorded but not checked")

    hwmodel = token.claims.hwmodel
    if policy.hwmodels and hwmodel not in policy.hwmodels:
        vector["hardware"] = ar4si.HW_CONTRAINDICATED
        findings.append(f"hwmodel {hwmodel} is not allowed by policy")
    else:
        vector["hardware"] = ar4si.HW_GENUINE

    if claims["dbgstat"] == "enabled":
        vector["runtime-opaque"] = ar4si.RUNTIME_VISIBLE if policy.allow_debug else ar4si.RUNTIME_CONTRAINDICATED
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
