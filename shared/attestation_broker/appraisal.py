"""Appraisal results: AR4SI trustworthiness vectors and EAR status.

Implements draft-ietf-rats-ar4si (trustworthiness claims and their value tiers) and
draft-ietf-rats-ear-04 §3 (``ear_status`` derived from the vector). A verifier returns one
:class:`Appraisal`; the token layer turns it into an EAR submodule.

Tiers (AR4SI §2.3.3): -1..1 none (verifier malfunction, no claim, unexpected evidence), 2..31
affirming, 32..95 warning, 96..127 contraindicated. The status of a vector is the tier of its worst claim,
except that a claim the operator's policy explicitly waived (``Appraisal.waived``, e.g. a debug guest under
a policy with ``debug: allowed``) counts at most as a warning; the vector itself always keeps the
registered value. docs/policy.md explains every value per kind.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EarStatus(StrEnum):
    NONE = "none"
    AFFIRMING = "affirming"
    WARNING = "warning"
    CONTRAINDICATED = "contraindicated"


# Trustworthiness claim names (AR4SI §2.3.4) and the values we use. Values are those registered in
# AR4SI for each claim; the tier of a value is fixed by its range.
TV_CLAIMS = (
    "instance-identity",
    "configuration",
    "executables",
    "file-system",
    "hardware",
    "runtime-opaque",
    "storage-opaque",
    "sourced-data",
)

# Graded TCB statuses (Intel's TCB status vocabulary, also used for the normalized ``tcb.status`` claim,
# which adds "Unknown"), best first.
TCB_STATUSES = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "Revoked",
)

# Registered values (draft-ietf-rats-ar4si §2.3.4, the same table as veraison/ear trustclaim.go). Only
# these code points are used; a value's tier is fixed by its range (see :func:`tier`).
# general (valid for every claim)
VERIFIER_MALFUNCTION = -1  # tier none: the verifier failed during appraisal
NO_CLAIM = 0  # tier none: no claim is being made
UNEXPECTED_EVIDENCE = 1  # tier none: evidence with unexpected elements
CRYPTO_FAILED = 99  # contraindicated: cryptographic validation failed
# tier representatives (EAR trust tiers), not claim values
AFFIRMING = 2
WARNING = 32
CONTRAINDICATED = 96

# instance-identity
IDENTITY_TRUSTED = 2  # recognized and not known to be compromised
IDENTITY_UNTRUSTED = 96  # recognized but not trustworthy
IDENTITY_UNRECOGNIZED = 97  # not recognized, although the verifier believes it should be
# configuration
CONFIG_APPROVED = 2  # a known and approved configuration
CONFIG_NO_KNOWN_VULNS = 3  # exposes no known vulnerabilities
CONFIG_UNSAFE = 32  # exposes known vulnerabilities (TCB out of date, SW hardening / configuration needed)
CONFIG_CONTRAINDICATED = 96  # unsupportable: exposes unacceptable vulnerabilities
# executables
EXEC_APPROVED_RUNTIME = 2
EXEC_APPROVED_BOOT = 3
EXEC_UNSAFE_RUNTIME = 32
EXEC_UNRECOGNIZED = 33
EXEC_CONTRAINDICATED = 96
# file-system
FS_APPROVED = 2
FS_UNRECOGNIZED = 32
FS_CONTRAINDICATED = 96
# hardware
HW_GENUINE = 2
HW_UNSAFE = 32  # genuine but with known vulnerabilities
HW_CONTRAINDICATED = 96  # recognized, but its trustworthiness is contraindicated
HW_UNRECOGNIZED = 97  # not recognized, although it should be
# runtime-opaque
RUNTIME_ENCRYPTED = 2  # memory encrypted, opaque to the host
RUNTIME_ISOLATED = 32  # memory isolated from other guests, not encrypted
RUNTIME_VISIBLE = 96  # memory visible to the host (e.g. a debug guest)
RUNTIME_CONTRAINDICATED = RUNTIME_VISIBLE
# storage-opaque
STORAGE_HW_KEYS = 2
STORAGE_SW_KEYS = 32
STORAGE_UNENCRYPTED = 96
# sourced-data
SOURCES_TRUSTED = 2
SOURCES_UNTRUSTED = 32
SOURCES_CONTRAINDICATED = 96

_GENERAL = (VERIFIER_MALFUNCTION, NO_CLAIM, UNEXPECTED_EVIDENCE, CRYPTO_FAILED)
# The registry: every value a claim may carry.
REGISTERED: Mapping[str, frozenset[int]] = {
    "instance-identity": frozenset({*_GENERAL, 2, 96, 97}),
    "configuration": frozenset({*_GENERAL, 2, 3, 32, 96}),
    "executables": frozenset({*_GENERAL, 2, 3, 32, 33, 96}),
    "file-system": frozenset({*_GENERAL, 2, 32, 96}),
    "hardware": frozenset({*_GENERAL, 2, 32, 96, 97}),
    "runtime-opaque": frozenset({*_GENERAL, 2, 32, 96}),
    "storage-opaque": frozenset({*_GENERAL, 2, 32, 96}),
    "sourced-data": frozenset({*_GENERAL, 2, 32, 96}),
}


def tier(value: int) -> EarStatus:
    """AR4SI §2.3.3 tiers: none -1..1; affirming 2..31 / -2..-32; warning 32..95 / -33..-96;
    contraindicated 96..127 / -97..-128."""
    if -1 <= value <= 1:
        return EarStatus.NONE
    if 2 <= value <= 31 or -32 <= value <= -2:
        return EarStatus.AFFIRMING
    if 32 <= value <= 95 or -96 <= value <= -33:
        return EarStatus.WARNING
    if 96 <= value <= 127 or -128 <= value <= -97:
        return EarStatus.CONTRAINDICATED
    raise ValueError(f"trustworthiness value {value} out of range")


_ORDER = [EarStatus.NONE, EarStatus.AFFIRMING, EarStatus.WARNING, EarStatus.CONTRAINDICATED]
_RANK = {status: rank for rank, status in enumerate(_ORDER)}
# Every valid value's tier, looked up rather than recomputed: an appraisal's status is read several times per request.
_TIERS = {value: tier(value) for value in range(-128, 128)}


def worst(statuses: list[EarStatus]) -> EarStatus:
    return max(statuses, key=_RANK.__getitem__, default=EarStatus.NONE)


def status_of(vector: Mapping[str, int], waived: Collection[str] = ()) -> EarStatus:
    statuses = []
    for name, value in vector.items():
        if name not in TV_CLAIMS:
            raise ValueError(f"unknown trustworthiness claim {name}")
        status = _TIERS.get(value) if type(value) is int else None
        if status is None:
            status = tier(value)  # raises the out-of-range error
        if name in waived and status is EarStatus.CONTRAINDICATED:
            status = EarStatus.WARNING
        statuses.append(status)
    return worst(statuses)


@dataclass(frozen=True)
class Appraisal:
    """What a verifier returns for one piece of evidence that verified.

    ``attester_claims`` follows the normalized claim schema (token/schema.json): tee, platform,
    measurement, dbgstat, tcb, report_data, instance, plus namespaced raw fields. ``verifier_claims``
    records the evidence kind, collateral identities and dates, bindings checked and upstream provenance.
    ``cnf`` is set when the evidence binds a key (RFC 7800 ``jwk`` or ``x5t#S256``/``kid``).
    """

    kind: str
    trustworthiness_vector: Mapping[str, int]
    attester_claims: Mapping[str, Any]
    verifier_claims: Mapping[str, Any] = field(default_factory=dict)
    policy_ids: tuple[str, ...] = ()
    cnf: Mapping[str, Any] | None = None
    # Human-readable reasons for any warning/contraindicated value; logged and put in verifier claims.
    findings: tuple[str, ...] = ()
    # Claims whose contraindicated value the operator's policy explicitly accepted (set by the policy engine).
    waived: tuple[str, ...] = ()

    @property
    def status(self) -> EarStatus:
        return status_of(self.trustworthiness_vector, self.waived)
