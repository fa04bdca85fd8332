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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_REJECTED

from .pipeline import VerifiedGcp

DEFAULT_POLICY_ID = "gcp-vtpm-default"
_KEYS = frozenset(
    {
        "id",
        "projects",
        "zones",
        "instance_ids",
        "require_event_log",
        "require_secure_boot",
        "require_tee",
        "ignore_pcrs",
        "pcrs",
        "snp",
        "tdx",
    }
)
_BANK_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True)
class GcpPolicy:
    id: str = DEFAULT_POLICY_ID
    projects: tuple[str, ...] | None = None
    zones: tuple[str, ...] | None = None
    instance_ids: tuple[int, ...] | None = None
    require_event_log: bool = False
    require_secure_boot: bool = False
    require_tee: bool = False
    ignore_pcrs: tuple[int, ...] = (10,)
    pcrs: Mapping[str, Mapping[int, frozenset[str]]] | None = None
    tee: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# Grading parameters the kind always uses; the operator's policy is applied by the policy engine.
FACTS = GcpPolicy()


def _worse(a: int, b: int) -> int:
    order = [ar4si.EarStatus.NONE, ar4si.EarStatus.AFFIRMING, ar4si.EarStatus.WARNING, ar4si.EarStatus.CONTRAINDICATED]
    return a if order.index(ar4si.tier(a)) >= order.index(ar4si.tier(b)) else b


def appraise(verified: VerifiedGcp, policy: GcpPolicy) -> tuple[dict[str, int], tuple[str, ...]]:
    """Apply the policy (raising POLICY_REJECTED) and grade; return (vector, findings)."""
    findings = list(verified.findings)
    ident = verified.ak_cert.identity
    checks: tuple[tuple[tuple[object, ...] | None, object, str], ...] = (
        (policy.projects, ident.project_id if ident else None, "project"),
        (policy.zones, ident.zone if ident else None, "zone"),
        (policy.instance_ids, ident.instance_id if ident else None, "instance id"),
    )
    for allowed, value, name in checks:
        if allowed is not None and value not in allowed:
            raise POLICY_REJECTED(f"GCE {name} is not allowed by policy {policy.id}")
    log = verified.event_log
    if policy.require_event_log and log is None:
        raise POLICY_REJECTED(f"policy {policy.id} requires an event log")
    secure_boot = log.secure_boot.enabled if log is not None and log.secure_boot is not None else None
    if policy.require_secure_boot and secure_boot is not True:
        raise POLICY_REJECTED(f"policy {policy.id} requires secure boot")
    if policy.require_tee and verified.tee is None:
        raise POLICY_REJECTED(f"policy {policy.id} requires a SEV-SNP or TDX report")

    vector: dict[str, int] = {}
    if ident is not None:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
    if secure_boot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    elif secure_boot is False:
        vector["configuration"] = ar4si.CONFIG_UNSAFE
        findings.append("secure boot is disabled")
    if policy.pcrs is None:
        vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    else:
        for bank, table in policy.pcrs.items():
            quote = verified.quote(bank)
            if quote is None or quote.pcrs is None:
                raise POLICY_REJECTED(f"policy {policy.id} lists {bank} PCRs but that bank is not quoted")
            for index, allowed_values in table.items():
                pcr = quote.pcrs.get(index)
                if pcr is None or pcr.hex() not in allowed_values:
                    raise POLICY_REJECTED(f"{bank} PCR {index} is not in the allow-list of policy {policy.id}")
        vector["executables"] = ar4si.EXEC_APPROVED_BOOT
    if verified.tee is not None:
        for claim, value in verified.tee.trustworthiness_vector.items():
            vector[claim] = _worse(vector[claim], value) if claim in vector else value
        findings.extend(verified.tee.findings)
    return vector, tuple(findings)
