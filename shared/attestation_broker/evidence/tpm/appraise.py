"""Grading of a verified TPM quote (plain ``tpm`` kind) into registered AR4SI values (draft-ietf-rats-ar4si
§2.3). Facts only; the operator's policy is applied by the policy engine (docs/policy.md).

A bare TPM quote has no vendor root: the AK is trusted only when the operator's policy pins it
(``ak_keys`` over ``verifier.ak_spki_sha256``, the SHA-256 of the AK's DER SubjectPublicKeyInfo). Until
then instance-identity is 97 (unrecognized, contraindicated), so an unpinned quote never yields a token.
PCR values are appraised by ``reference_values`` over ``tpm.pcrs.<index>``; UEFI Secure Boot from the
event log grades configuration (2 on, 32 off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from attestation_broker import appraisal as ar4si

from .checks import VerifiedQuote
from .eventlog import VerifiedEventLog

PLATFORMS = ("gcp", "azure", "aws", "baremetal", "unknown")
_KEYS = {
    "id",
    "ak_public_sha256",
    "allow_any_ak",
    "platform",
    "pcr_bank",
    "pcrs",
    "require_secure_boot",
    "require_event_log",
    "event_log_ignore_pcrs",
}


@dataclass(frozen=True)
class TpmPolicy:
    id: str
    ak_public_sha256: frozenset[str]
    allow_any_ak: bool
    platform: str
    pcr_bank: str | None
    allowed_pcrs: Mapping[str, Mapping[int, frozenset[bytes]]]
    require_secure_boot: bool
    require_event_log: bool
    event_log_ignore_pcrs: frozenset[int]


# Grading parameters the kind always uses. The AK is pinned by the operator's policy (``ak_keys``) in the
# policy engine, which raises instance-identity from 97 (unrecognized) to 2 when the key matches.
# PCR 10 (IMA) is extended by the OS, not the firmware, so the firmware event log cannot explain it.
FACTS = TpmPolicy("tpm", frozenset(), True, "unknown", None, {}, False, False, frozenset({10}))


@dataclass(frozen=True)
class TpmAppraisal:
    vector: Mapping[str, int]
    findings: tuple[str, ...]
    ak_pinned: bool


def appraise(policy: TpmPolicy, quote: VerifiedQuote, log: VerifiedEventLog | None) -> TpmAppraisal:
    """Grade a verified quote (and log) as facts; never refuses (the policy engine does)."""
    findings: list[str] = []
    vector: dict[str, int] = {}
    pinned = quote.ak.spki_sha256 in policy.ak_public_sha256
    if pinned:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
        vector["hardware"] = ar4si.HW_GENUINE
    else:
        vector["instance-identity"] = ar4si.IDENTITY_UNRECOGNIZED
        findings.append("attestation key is not pinned: the TPM's identity is not established")
    vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    findings.append("boot measurements not yet appraised against reference values")
    secure_boot = log.secure_boot.enabled if log is not None and log.secure_boot is not None else None
    if secure_boot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    elif secure_boot is False:
        vector["configuration"] = ar4si.CONFIG_UNSAFE
        findings.append("UEFI Secure Boot is disabled")
    return TpmAppraisal(vector, tuple(findings), pinned)
