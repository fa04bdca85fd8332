"""``azure-vtpm`` appraisal policy and grading into an AR4SI trustworthiness vector.

Policy section (``policy["azure-vtpm"]``), unknown keys rejected (POLICY_INVALID)::

    {
      "id": "azure-prod",                    # policy id (default "azure-vtpm-default")
      "require_secure_boot": false,          # vm-configuration secure-boot must be true
      "allow_console": true,                 # false: vm-configuration console-enabled must be false
      "vm_ids": ["26F8BC30-..."],            # allowed vmUniqueId values (case-insensitive)
      "pcrs": {"sha256": {"7": ["<hex>"]}},  # boot allow-list over supplied, digest-verified PCR values
      "snp": {...}, "tdx": {...}             # sections passed to the SEV-SNP / TDX verifiers
    }

Grading: the hardware verifier's vector (hardware, instance-identity, runtime-opaque, configuration,
executables) is the base; the vTPM part can only make a claim worse:

- configuration: CONFIG_UNSAFE (warning) when secure-boot is false (finding), unless the policy
  requires secure boot (then POLICY_REJECTED);
- executables: EXEC_APPROVED_BOOT when every listed PCR matched (else POLICY_REJECTED); without a PCR
  list the hardware verifier's value stands (EXEC_UNRECOGNIZED unless its measurement list matched).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_REJECTED

from .pipeline import VerifiedAzure

DEFAULT_POLICY_ID = "azure-vtpm-default"
_KEYS = frozenset({"id", "require_secure_boot", "allow_console", "vm_ids", "pcrs", "snp", "tdx"})


@dataclass(frozen=True)
class AzurePolicy:
    id: str = DEFAULT_POLICY_ID
    require_secure_boot: bool = False
    allow_console: bool = True
    vm_ids: frozenset[str] | None = None
    pcrs: Mapping[int, frozenset[str]] | None = None
    tee: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# Grading parameters the kind always uses; the operator's policy is applied by the policy engine.
FACTS = AzurePolicy()


def _worse(a: int, b: int) -> int:
    order = [ar4si.EarStatus.NONE, ar4si.EarStatus.AFFIRMING, ar4si.EarStatus.WARNING, ar4si.EarStatus.CONTRAINDICATED]
    return a if order.index(ar4si.tier(a)) >= order.index(ar4si.tier(b)) else b


def appraise(v: VerifiedAzure, policy: AzurePolicy) -> tuple[dict[str, int], tuple[str, ...]]:
    findings = list(v.hardware.findings)
    config = v.hcl.vm_configuration
    vector = dict(v.hardware.trustworthiness_vector)
    vm_id = str(config.get("vmUniqueId", "")).upper()
    if policy.vm_ids is not None and vm_id not in policy.vm_ids:
        raise POLICY_REJECTED(f"vmUniqueId is not allowed by policy {policy.id}")
    secure_boot = config.get("secure-boot")
    if secure_boot is not True:
        if policy.require_secure_boot:
            raise POLICY_REJECTED(f"policy {policy.id} requires secure boot")
        findings.append("secure boot is disabled" if secure_boot is False else "secure boot state unknown")
        vector["configuration"] = _worse(vector.get("configuration", ar4si.CONFIG_APPROVED), ar4si.CONFIG_UNSAFE)
    if not policy.allow_console and config.get("console-enabled") is not False:
        raise POLICY_REJECTED(f"policy {policy.id} forbids the serial console")
    if policy.pcrs is not None:
        values = v.quote.pcrs
        if values is None:
            raise POLICY_REJECTED(f"policy {policy.id} lists PCRs but no PCR values were supplied")
        for index, allowed in policy.pcrs.items():
            value = values.get(index)
            if value is None or value.hex() not in allowed:
                raise POLICY_REJECTED(f"sha256 PCR {index} is not in the allow-list of policy {policy.id}")
        if vector.get("executables") in (None, ar4si.EXEC_UNRECOGNIZED):
            vector["executables"] = ar4si.EXEC_APPROVED_BOOT
    return vector, tuple(findings)
