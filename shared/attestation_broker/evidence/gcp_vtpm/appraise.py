"""``gcp-vtpm`` fact grading into registered AR4SI values (facts only; instance, project, zone, PCR reference
values, secure boot and TEE requirements are rules of the policy engine, docs/policy.md).

Grading (vTPM part; a TEE part contributes its own vector and the worse value of each claim wins):

=================  =============================================  ======================================
claim              affirming                                      warning / contraindicated
=================  =============================================  ======================================
instance-identity  IDENTITY_TRUSTED: AK cert chains to a pinned   (no claim when the cert has no
                   Google root and certifies a GCE instance       instance identity extension)
configuration      CONFIG_APPROVED: secure boot on (event log)    CONFIG_UNSAFE: secure boot off
executables        reference_values (engine): 3                   EXEC_UNRECOGNIZED (33)
hardware / runtime from the TEE verifier when a TEE report is      (no claim for a vTPM alone: Google's
-opaque            present                                        vTPM is not hardware-rooted)
=================  =============================================  ======================================

The kind always grades with :data:`FACTS` (no constraint; PCR 10, IMA, is not replayed from the firmware log).
"""

from __future__ import annotations

from dataclasses import dataclass

from attestation_broker import appraisal as ar4si

from .pipeline import VerifiedGcp


@dataclass(frozen=True)
class GcpPolicy:
    """Grading parameters: the kind always uses :data:`FACTS`."""

    id: str = "gcp-vtpm"
    # PCRs the firmware event log cannot explain and replay skips (10: IMA, extended by the OS).
    ignore_pcrs: tuple[int, ...] = (10,)


FACTS = GcpPolicy()


def _worse(a: int, b: int) -> int:
    order = [ar4si.EarStatus.NONE, ar4si.EarStatus.AFFIRMING, ar4si.EarStatus.WARNING, ar4si.EarStatus.CONTRAINDICATED]
    return a if order.index(ar4si.tier(a)) >= order.index(ar4si.tier(b)) else b


def appraise(verified: VerifiedGcp, policy: GcpPolicy) -> tuple[dict[str, int], tuple[str, ...]]:
    """Grade the verified facts; return (vector, findings). Never refuses: the policy engine does."""
    findings = list(verified.findings)
    ident = verified.ak_cert.identity
    log = verified.event_log
    secure_boot = log.secure_boot.enabled if log is not None and log.secure_boot is not None else None
    vector: dict[str, int] = {}
    if ident is not None:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
    if secure_boot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    elif secure_boot is False:
        vector["configuration"] = ar4si.CONFIG_UNSAFE
        findings.append("secure boot is disabled")
    vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    if verified.tee is not None:
        for claim, value in verified.tee.trustworthiness_vector.items():
            vector[claim] = _worse(vector[claim], value) if claim in vector else value
        findings.extend(verified.tee.findings)
    return vector, tuple(findings)
