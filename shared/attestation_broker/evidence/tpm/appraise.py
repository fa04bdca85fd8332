"""Appraisal policy of the plain ``tpm`` kind and the trustworthiness vector it yields (AR4SI §2.3).

A bare TPM quote has no vendor root: the AK is trusted only because the policy pins it
(``ak_public_sha256``: SHA-256 of the AK's DER SubjectPublicKeyInfo). A policy without a pin is refused
(POLICY_INVALID) unless it says ``"allow_any_ak": true``, and then instance-identity is only a warning.

Policy keys (unknown keys → POLICY_INVALID)::

    id                   str                  policy id reported in ear_appraisal_policy_ids (default "tpm-default")
    ak_public_sha256     [hex, ...]           allowed AK SPKI digests
    allow_any_ak         bool                 accept any AK (no root of trust; warning)
    platform             str                  gcp | azure | aws | baremetal | unknown (default unknown)
    pcr_bank             str                  bank to verify (default: the quote's only bank)
    pcrs                 {bank: {idx: hex | [hex, ...]}}  allowed PCR values (requires supplied PCR values)
    require_secure_boot  bool                 PCR7 event log must show SecureBoot = 1
    require_event_log    bool                 an event log must be supplied and replay
    event_log_ignore_pcrs [int, ...]          quoted PCRs the firmware log cannot cover (e.g. 10 for IMA)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_INVALID
from attestation_broker.evidence.common import policy_bool, policy_hex, policy_section, require_policy_id

from .abi import DIGEST_SIZES, HASH_NAMES
from .checks import VerifiedQuote
from .digest import bank_alg
from .errors import (
    TPM_AK_NOT_PINNED,
    TPM_EVENTLOG_REQUIRED,
    TPM_PCR_NOT_ALLOWED,
    TPM_PCR_VALUES_MISSING,
    TPM_SECURE_BOOT_DISABLED,
)
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


def parse_policy(doc: Mapping[str, Any]) -> TpmPolicy:
    """Parse the ``tpm`` policy section; raise POLICY_INVALID on unknown keys, bad types, or no AK root."""
    doc = policy_section("tpm", doc, _KEYS)
    policy_id = require_policy_id("tpm", doc.get("id", "tpm-default"))
    pins_doc = doc.get("ak_public_sha256", [])
    if not isinstance(pins_doc, list):
        raise POLICY_INVALID("tpm policy: ak_public_sha256 must be a list")
    pins = frozenset(policy_hex("tpm", p, (32,), "ak_public_sha256 entry").hex() for p in pins_doc)
    allow_any = policy_bool("tpm", doc, "allow_any_ak")
    if not pins and not allow_any:
        raise POLICY_INVALID("tpm policy pins no attestation key (set ak_public_sha256, or allow_any_ak: true)")
    platform = doc.get("platform", "unknown")
    if platform not in PLATFORMS:
        raise POLICY_INVALID(f"tpm policy: platform must be one of {', '.join(PLATFORMS)}")
    bank = doc.get("pcr_bank")
    if bank is not None:
        if not isinstance(bank, str):
            raise POLICY_INVALID("tpm policy: pcr_bank must be a string")
        try:
            bank_alg(bank)
        except Exception as exc:
            raise POLICY_INVALID("tpm policy: unknown pcr_bank") from exc
    allowed: dict[str, dict[int, frozenset[bytes]]] = {}
    pcrs_doc = doc.get("pcrs", {})
    if not isinstance(pcrs_doc, Mapping):
        raise POLICY_INVALID("tpm policy: pcrs must be an object of banks")
    for bank_name, entries in pcrs_doc.items():
        try:
            alg = bank_alg(str(bank_name))
        except Exception as exc:
            raise POLICY_INVALID("tpm policy: unknown bank in pcrs") from exc
        if not isinstance(entries, Mapping) or not entries:
            raise POLICY_INVALID("tpm policy: pcrs bank must map PCR indices to values")
        per: dict[int, frozenset[bytes]] = {}
        for key, values in entries.items():
            try:
                index = int(key)
            except ValueError as exc:
                raise POLICY_INVALID("tpm policy: pcrs index must be an integer") from exc
            if not 0 <= index <= 23:
                raise POLICY_INVALID("tpm policy: pcrs index out of range")
            items = values if isinstance(values, list) else [values]
            if not items:
                raise POLICY_INVALID("tpm policy: pcrs entry allows no value")
            per[index] = frozenset(
                policy_hex("tpm", v, (DIGEST_SIZES[alg],), f"pcrs {bank_name}:{index}") for v in items
            )
        allowed.setdefault(HASH_NAMES[alg], {}).update(per)
    ignore_doc = doc.get("event_log_ignore_pcrs", [])
    if not isinstance(ignore_doc, list) or not all(isinstance(i, int) and 0 <= i <= 23 for i in ignore_doc):
        raise POLICY_INVALID("tpm policy: event_log_ignore_pcrs must be a list of PCR indices")
    return TpmPolicy(
        policy_id,
        pins,
        allow_any,
        platform,
        bank,
        allowed,
        policy_bool("tpm", doc, "require_secure_boot"),
        policy_bool("tpm", doc, "require_event_log"),
        frozenset(ignore_doc),
    )


@dataclass(frozen=True)
class TpmAppraisal:
    vector: Mapping[str, int]
    findings: tuple[str, ...]
    ak_pinned: bool


def appraise(policy: TpmPolicy, quote: VerifiedQuote, log: VerifiedEventLog | None) -> TpmAppraisal:
    """Apply the policy to a verified quote (and log); raise PolicyViolation codes, else return the vector."""
    findings: list[str] = []
    vector: dict[str, int] = {}
    pinned = quote.ak.spki_sha256 in policy.ak_public_sha256
    if pinned:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
        vector["hardware"] = ar4si.HW_GENUINE
    elif policy.allow_any_ak:
        vector["instance-identity"] = ar4si.WARNING
        findings.append("attestation key is not pinned (allow_any_ak): the TPM's identity is not established")
    else:
        raise TPM_AK_NOT_PINNED("attestation key is not in ak_public_sha256")

    if policy.require_event_log and log is None:
        raise TPM_EVENTLOG_REQUIRED("policy requires an event log")

    if policy.allowed_pcrs:
        for bank, entries in policy.allowed_pcrs.items():
            if bank != quote.bank or quote.pcrs is None:
                raise TPM_PCR_VALUES_MISSING(f"policy constrains {bank} PCRs but none were verified")
            for index, allowed in sorted(entries.items()):
                value = quote.pcrs.get(index)
                if value is None:
                    raise TPM_PCR_NOT_ALLOWED(f"policy constrains PCR {index} but the quote does not select it")
                if value not in allowed:
                    raise TPM_PCR_NOT_ALLOWED(f"PCR {index} ({bank}) is not an allowed value")
        vector["executables"] = ar4si.EXEC_APPROVED_BOOT
    else:
        vector["executables"] = ar4si.EXEC_UNRECOGNIZED
        findings.append("policy has no PCR allow-list: boot measurements are not recognized")

    secure_boot = log.secure_boot.enabled if log is not None and log.secure_boot is not None else None
    if policy.require_secure_boot:
        if log is None:
            raise TPM_EVENTLOG_REQUIRED("secure boot is required but no event log was supplied")
        if secure_boot is not True:
            raise TPM_SECURE_BOOT_DISABLED("event log does not show UEFI Secure Boot enabled")
    if secure_boot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    elif secure_boot is False:
        vector["configuration"] = ar4si.CONFIG_UNSAFE
        findings.append("UEFI Secure Boot is disabled")
    return TpmAppraisal(vector, tuple(findings), pinned)
