"""``azure-vtpm`` fact grading into registered AR4SI values. Facts only: VM ids, secure boot, serial console
and PCR reference values are rules of the policy engine over the normalized claims (``instance.vm_id``,
``azure.vm_configuration.*``, ``tpm.pcrs.*``; docs/policy.md); the kind always grades with :data:`FACTS`.

Grading: the hardware verifier's vector (hardware, instance-identity, runtime-opaque, configuration,
executables) is the base; the vTPM part can only make a claim worse: configuration CONFIG_UNSAFE (32) when
secure-boot is false or unknown (finding).
"""

from __future__ import annotations

from dataclasses import dataclass

from attestation_broker import appraisal as ar4si

from .pipeline import VerifiedAzure


@dataclass(frozen=True)
class AzurePolicy:
    """Grading parameters (none today): the kind always uses :data:`FACTS`."""

    id: str = "azure-vtpm"


FACTS = AzurePolicy()


def _worse(a: int, b: int) -> int:
    order = [ar4si.EarStatus.NONE, ar4si.EarStatus.AFFIRMING, ar4si.EarStatus.WARNING, ar4si.EarStatus.CONTRAINDICATED]
    return a if order.index(ar4si.tier(a)) >= order.index(ar4si.tier(b)) else b


def appraise(v: VerifiedAzure, policy: AzurePolicy) -> tuple[dict[str, int], tuple[str, ...]]:
    findings = list(v.hardware.findings)
    config = v.hcl.vm_configuration
    vector = dict(v.hardware.trustworthiness_vector)
    secure_boot = config.get("secure-boot")
    if secure_boot is not True:
        findings.append("secure boot is disabled" if secure_boot is False else "secure boot state unknown")
        vector["configuration"] = _worse(vector.get("configuration", ar4si.CONFIG_APPROVED), ar4si.CONFIG_UNSAFE)
    return vector, tuple(findings)
