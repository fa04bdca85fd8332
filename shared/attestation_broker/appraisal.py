"""Appraisal results: AR4SI trustworthiness vectors and EAR status.

Implements draft-ietf-rats-ar4si (trustworthiness claims and their value tiers) and
draft-ietf-rats-ear-04 §3 (``ear_status`` derived from the vector). A verifier returns one
:class:`Appraisal`; the token layer turns it into an EAR submodule.

Tiers (AR4SI §2.3.3): 0 none, 1 verifier malfunction, 2..31 affirming, 32..95 warning,
96..127 contraindicated. The status of a vector is the tier of its worst claim.
"""

from __future__ import annotations

from collections.abc import Mapping
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

NO_CLAIM = 0
VERIFIER_MALFUNCTION = 1
AFFIRMING = 2
WARNING = 32
CONTRAINDICATED = 96
CRYPTO_FAILED = 99

# instance-identity
IDENTITY_TRUSTED = 2
IDENTITY_UNTRUSTED = 96
# configuration
CONFIG_APPROVED = 2
CONFIG_UNSAFE = 32  # known vulnerabilities: TCB out of date, SW hardening needed
CONFIG_UNSUPPORTED = 36  # configuration needed, or not covered by the vendor
CONFIG_CONTRAINDICATED = 96
# executables
EXEC_APPROVED_RUNTIME = 2
EXEC_APPROVED_BOOT = 3
EXEC_UNRECOGNIZED = 33
EXEC_CONTRAINDICATED = 96
# hardware
HW_GENUINE = 2
HW_UNSAFE = 32
HW_UNSUPPORTED = 36
HW_CONTRAINDICATED = 96
# runtime-opaque
RUNTIME_ENCRYPTED = 2
RUNTIME_VISIBLE = 32  # e.g. a debug-enabled guest whose memory the host can read
RUNTIME_CONTRAINDICATED = 96


def tier(value: int) -> EarStatus:
    if value in (NO_CLAIM, VERIFIER_MALFUNCTION):
        return EarStatus.NONE if value == NO_CLAIM else EarStatus.CONTRAINDICATED
    if 2 <= value <= 31:
        return EarStatus.AFFIRMING
    if 32 <= value <= 95:
        return EarStatus.WARNING
    if 96 <= value <= 127:
        return EarStatus.CONTRAINDICATED
    raise ValueError(f"trustworthiness value {value} out of range")


_ORDER = [EarStatus.NONE, EarStatus.AFFIRMING, EarStatus.WARNING, EarStatus.CONTRAINDICATED]


def worst(statuses: list[EarStatus]) -> EarStatus:
    return max(statuses, key=_ORDER.index, default=EarStatus.NONE)


def status_of(vector: Mapping[str, int]) -> EarStatus:
    for name in vector:
        if name not in TV_CLAIMS:
            raise ValueError(f"unknown trustworthiness claim {name}")
    return worst([tier(v) for v in vector.values()])


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

    @property
    def status(self) -> EarStatus:
        return status_of(self.trustworthiness_vector)
