"""Nitro appraisal policy and the trustworthiness vector (AR4SI) of a verified document.

Policy section (``{}`` is the default policy ``nitro/default``):

    {"id": "my-enclave-v3",                       optional; default: derived from the section's digest
     "pcrs": {"0": ["<hex>", ...], "8": [...]},   allowed values per index; indices 0, 1, 2, 3, 4, 8
     "allow_debug": false,                         default false: a debug enclave is contraindicated
     "max_age_seconds": 300}                       document age limit against ``now`` (default 300)

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
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_INVALID
from attestation_broker.evidence.common import (
    content_policy_id,
    policy_bool,
    policy_hex,
    policy_section,
    require_policy_id,
)

from .abi import PCR_LENGTHS, AttestationDocument

DEFAULT_POLICY_ID = "nitro/default"
DEFAULT_MAX_AGE_SECONDS = 300
POLICY_PCR_INDICES = (0, 1, 2, 3, 4, 8)
EXECUTABLE_PCRS = (0, 1, 2, 8)
CONFIGURATION_PCR = 3
INSTANCE_PCR = 4
DEBUG_PCRS = (0, 1, 2)
_KEYS = frozenset({"id", "pcrs", "allow_debug", "max_age_seconds"})


@dataclass(frozen=True)
class NitroPolicy:
    policy_id: str = DEFAULT_POLICY_ID
    pcrs: Mapping[int, frozenset[bytes]] = field(default_factory=lambda: MappingProxyType({}))
    allow_debug: bool = False
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS

    @property
    def max_age(self) -> timedelta:
        return timedelta(seconds=self.max_age_seconds)

    @classmethod
    def parse(cls, section: Mapping[str, Any]) -> NitroPolicy:
        if not section:
            return cls()
        section = policy_section("nitro", section, _KEYS)
        allow_debug = policy_bool("nitro", section, "allow_debug")
        max_age = section.get("max_age_seconds", DEFAULT_MAX_AGE_SECONDS)
        if type(max_age) is not int or max_age <= 0:
            raise POLICY_INVALID("nitro policy max_age_seconds must be a positive integer")
        pcrs = _parse_pcrs(section["pcrs"]) if "pcrs" in section else {}
        explicit_id = section.get("id")
        if explicit_id is None:
            policy_id = content_policy_id("nitro/sha256:", section)
        else:
            policy_id = require_policy_id("nitro", explicit_id)
        return cls(policy_id=policy_id, pcrs=MappingProxyType(pcrs), allow_debug=allow_debug, max_age_seconds=max_age)


def _parse_pcrs(raw: object) -> dict[int, frozenset[bytes]]:
    if type(raw) is not dict or not raw:
        raise POLICY_INVALID("nitro policy pcrs must be a non-empty object")
    allowed: dict[int, frozenset[bytes]] = {}
    for key, values in raw.items():
        if type(key) is not str or not key.isdigit() or int(key) not in POLICY_PCR_INDICES:
            raise POLICY_INVALID(f"nitro policy pcrs keys must be one of {POLICY_PCR_INDICES}")
        if type(values) is not list or not values:
            raise POLICY_INVALID(f"nitro policy pcrs[{key}] must be a non-empty list of hex strings")
        allowed[int(key)] = frozenset(
            policy_hex("nitro", value, PCR_LENGTHS, f"pcrs[{key}] values") for value in values
        )
    return allowed


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
        vector["runtime-opaque"] = ar4si.RUNTIME_VISIBLE if policy.allow_debug else ar4si.RUNTIME_CONTRAINDICATED

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
        findings.append("no PCR allow-list for the enclave image in the policy")
    return Verdict(vector=MappingProxyType(vector), debug=debug, findings=tuple(findings))
