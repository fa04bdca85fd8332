"""Grading of a verified SEV-SNP report into registered AR4SI trustworthiness values (draft-ietf-rats-ar4si
§2.3; guest POLICY / PLATFORM_INFO per the SEV-SNP ABI spec). Facts only: the operator's policy is applied
afterwards by the policy engine (docs/policy.md), never here.

=================  ==========================================  =========================================
claim              affirming                                   warning / contraindicated
=================  ==========================================  =========================================
hardware           HW_GENUINE (2): chain to pinned ARK         –
instance-identity  IDENTITY_TRUSTED (2): VCEK/VLEK verified    –
configuration      CONFIG_APPROVED (2)                         CONFIG_CONTRAINDICATED (96): guest policy
                                                               allows a migration agent
executables        –                                           EXEC_UNRECOGNIZED (33) until a policy's
                                                               reference_values match (then 3)
runtime-opaque     RUNTIME_ENCRYPTED (2)                       RUNTIME_VISIBLE (96): DEBUG is set
=================  ==========================================  =========================================

TCB status: AMD publishes no TCB-status service for SNP (unlike Intel PCS), so ``tcb.status`` is
``UpToDate``; a policy's ``tcb_minimums`` compares the REPORTED_TCB components.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from attestation_broker import appraisal as ar4si
from attestation_broker.evidence.snp.abi import AttestationReport, TcbVersion


@dataclass(frozen=True)
class SnpPolicy:
    """Grading parameters (not the operator's policy). :data:`FACTS` is what the kind always uses; the
    other fields remain for composite kinds and tests that grade a report under fixed parameters."""

    policy_id: str
    allow_any: bool = False
    measurements: frozenset[bytes] | None = None
    min_tcb: Mapping[str, int] | None = None
    allow_debug: bool = False
    max_vmpl: int = 3
    allow_smt: bool = True
    allow_migration_agent: bool = False
    host_data: frozenset[bytes] | None = None
    id_key_digests: frozenset[bytes] | None = None
    author_key_digests: frozenset[bytes] | None = None
    family_ids: frozenset[bytes] | None = None
    image_ids: frozenset[bytes] | None = None
    products: frozenset[str] | None = None
    signing_keys: frozenset[str] | None = None
    min_abi: tuple[int, int] | None = None
    min_guest_svn: int | None = None


FACTS = SnpPolicy(policy_id="snp")


@dataclass(frozen=True)
class Grade:
    vector: Mapping[str, int]
    tcb_status: str
    findings: tuple[str, ...]


def appraise(report: AttestationReport, tcb: TcbVersion, product: str, signing_key: str, policy: SnpPolicy) -> Grade:
    """Grade a verified report against ``policy`` (never raises for policy outcomes: they are graded)."""
    findings: list[str] = []

    hardware = ar4si.HW_GENUINE
    tcb_status = "UpToDate"
    if policy.min_tcb is not None:
        have = tcb.as_dict()
        low = [k for k, v in policy.min_tcb.items() if k in have and have[k] < v]
        if low:
            hardware, tcb_status = ar4si.HW_UNSAFE, "OutOfDate"
            findings.append(f"REPORTED_TCB below policy minimum for {', '.join(sorted(low))}")
    if policy.products is not None and product not in policy.products:
        hardware = ar4si.HW_CONTRAINDICATED
        findings.append(f"product line {product} not allowed by policy")

    configuration = ar4si.CONFIG_APPROVED

    def config_violation(reason: str) -> None:
        nonlocal configuration
        configuration = ar4si.CONFIG_CONTRAINDICATED
        findings.append(reason)

    bits = report.policy_bits()
    if report.vmpl > policy.max_vmpl:
        config_violation(f"VMPL {report.vmpl} exceeds policy maximum {policy.max_vmpl}")
    if not policy.allow_smt and report.platform_info_bits()["smt_en"]:
        config_violation("SMT is enabled on the platform and policy forbids it")
    if not policy.allow_migration_agent and bits["migrate_ma"]:
        config_violation("guest policy allows a migration agent and policy forbids it")
    if policy.min_abi is not None and (report.abi_major, report.abi_minor) < policy.min_abi:
        config_violation(f"guest policy ABI {report.abi_major}.{report.abi_minor} below policy minimum")
    if policy.min_guest_svn is not None and report.guest_svn < policy.min_guest_svn:
        config_violation(f"GUEST_SVN {report.guest_svn} below policy minimum {policy.min_guest_svn}")
    if policy.signing_keys is not None and signing_key not in policy.signing_keys:
        config_violation(f"signing key {signing_key} not allowed by policy")
    for name, allowed, actual in (
        ("HOST_DATA", policy.host_data, report.host_data),
        ("ID_KEY_DIGEST", policy.id_key_digests, report.id_key_digest),
        ("AUTHOR_KEY_DIGEST", policy.author_key_digests, report.author_key_digest),
        ("FAMILY_ID", policy.family_ids, report.family_id),
        ("IMAGE_ID", policy.image_ids, report.image_id),
    ):
        if allowed is not None and actual not in allowed:
            config_violation(f"{name} not in the policy allow-list")

    if policy.measurements is None:
        executables = ar4si.EXEC_UNRECOGNIZED
        findings.append("launch measurement not yet appraised against reference values")
    elif report.measurement in policy.measurements:
        executables = ar4si.EXEC_APPROVED_BOOT
    else:
        executables = ar4si.EXEC_CONTRAINDICATED
        findings.append("launch MEASUREMENT not in the policy allow-list")

    if not report.debug:
        runtime = ar4si.RUNTIME_ENCRYPTED
    else:
        runtime = ar4si.RUNTIME_VISIBLE
        findings.append("guest policy DEBUG is set: the host can read guest memory")

    vector = {
        "instance-identity": ar4si.IDENTITY_TRUSTED,
        "configuration": configuration,
        "executables": executables,
        "hardware": hardware,
        "runtime-opaque": runtime,
    }
    return Grade(vector=vector, tcb_status=tcb_status, findings=tuple(findings))
