"""Grading of a verified Nitro attestation document into registered AR4SI values (facts only: the
operator's policy, e.g. reference values over ``nitro.pcrs.<n>``, is applied by the policy engine,
docs/policy.md). :class:`NitroPolicy` holds grading parameters; the kind always uses :data:`FACTS`. Document
age is a policy rule (``max_evidence_age_seconds``, 300 s in the built-in default ``nitro`` policy).

PCR meanings (Nitro Enclaves User Guide, "Where to get an enclave's measurements"): PCR0 enclave
image, PCR1 kernel + bootstrap, PCR2 application, PCR3 parent instance IAM role, PCR4 parent
instance ID, PCR8 enclave image signing certificate. They map onto AR4SI claims: 0/1/2/8 →
executables, 3 → configuration, 4 → instance-identity.

Debug mode: the NSM reports PCR0..2 as zeros for enclaves run with ``--debug-mode``. We treat any of
PCR0..2 being all zeros as debug (a production image never measures to zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from attestation_broker import appraisal as ar4si

from .abi import AttestationDocument

DEFAULT_POLICY_ID = "nitro/default"
POLICY_PCR_INDICES = (0, 1, 2, 3, 4, 8)
EXECUTABLE_PCRS = (0, 1, 2, 8)
CONFIGURATION_PCR = 3
INSTANCE_PCR = 4
DEBUG_PCRS = (0, 1, 2)


@dataclass(frozen=True)
class NitroPolicy:
    policy_id: str = DEFAULT_POLICY_ID
    pcrs: Mapping[int, frozenset[bytes]] = field(default_factory=lambda: MappingProxyType({}))
    allow_debug: bool = False


FACTS = NitroPolicy()


def is_debug(document: AttestationDocument) -> bool:
    return any(not any(document.pcrs[index]) for index in DEBUG_PCRS)


@dataclass(frozen=True)
class Verdict:
    vector: Mapping[str, int]
    debug: bool
    findings: tuple[str, ...]


def appraise(document: AttestationDocument, policy: NitroPolicy) -> Verdict:
    findings: list[str] = []

    def matches(index: int) -> bool:
        ok = document.pcrs.get(index) in policy.pcrs[index]
        if not ok:
            findings.append(f"PCR{index} is not in the policy allow-list")
        return ok

    vector: dict[str, int] = {"hardware": ar4si.HW_GENUINE}

    debug = is_debug(document)
    if not debug:
        vector["runtime-opaque"] = ar4si.RUNTIME_ENCRYPTED
    else:
        findings.append("debug-mode enclave (PCR0..2 zero): the parent instance can inspect its memory")
        vector["runtime-opaque"] = ar4si.RUNTIME_VISIBLE

    executable_rules = [index for index in EXECUTABLE_PCRS if index in policy.pcrs]
    if not executable_rules:
        vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    else:
        results = [matches(index) for index in executable_rules]
        vector["executables"] = ar4si.EXEC_APPROVED_BOOT if all(results) else ar4si.EXEC_CONTRAINDICATED

    if CONFIGURATION_PCR in policy.pcrs:
        vector["configuration"] = ar4si.CONFIG_APPROVED if matches(CONFIGURATION_PCR) else ar4si.CONFIG_CONTRAINDICATED

    # The document is signed by an AWS-issued per-enclave key naming module_id: identity is attested.
    if INSTANCE_PCR in policy.pcrs and not matches(INSTANCE_PCR):
        vector["instance-identity"] = ar4si.IDENTITY_UNTRUSTED
    else:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED

    if vector["executables"] == ar4si.EXEC_UNRECOGNIZED:
        findings.append("enclave image PCRs not yet appraised against reference values")
    return Verdict(vector=MappingProxyType(vector), debug=debug, findings=tuple(findings))
