"""TPM 2.0 core (quotes, AK keys, TCG event logs) and the plain ``tpm`` evidence kind.

Stable API for the vTPM composites (``gcp-vtpm``, ``azure-vtpm``) — import from this package only:

Quote structures (TPM 2.0 Part 2)
    ``parse_attest(bytes) -> Attest``            TPMS_ATTEST of type ATTEST_QUOTE (magic TPM_GENERATED).
    ``parse_signature(bytes) -> Signature``      TPMT_SIGNATURE (RSASSA/RSAPSS/ECDSA) or a bare RSA PKCS#1 v1.5
                                                 signature (Azure).
    ``load_ak_public(x) -> AkPublic``            TPM2B_PUBLIC / TPMT_PUBLIC (RSA, ECC), PEM/DER SPKI, JWK dict/JSON,
                                                 or a ``cryptography`` public key. ``.spki_sha256`` is the pin value.
    ``parse_tpmt_public(bytes) -> TpmPublic``    raw TPMT_PUBLIC fields (go-tpm-tools ``ak_pub``).

Quote verification
    ``verify_quote(attest, signature, ak, *, expected_extra_data, pcrs=None, pcr_bank=None,
                   require_restricted=True) -> VerifiedQuote``
        Signature with the AK (hash = the signature scheme's), extraData == expected (``None`` = explicitly not
        checked), PCR values → pcrDigest = H_sig(concat of selected PCRs ascending) for any bank.
        ``VerifiedQuote``: attest, signature, ak, bank, selected, pcrs (verified values or None), pcr_digest,
        hash_alg, extra_data_checked.
    ``pcr_digest(values, selected, hash_alg) -> bytes``

Event logs (TCG PC Client PFP)
    ``parse_event_log(bytes) -> EventLog``       crypto-agile or SHA-1 legacy; ``.events``, ``.banks``,
                                                 ``.startup_locality``.
    ``replay(EventLog, bank) -> dict[int, bytes]``  PCR values from the log (PCRs with events only).
    ``verify_event_log(log, quoted_pcrs, bank, *, ignore_pcrs=()) -> VerifiedEventLog``
        replay vs quoted PCRs (mismatch → TPM_EVENTLOG_REPLAY_MISMATCH; unlogged non-reset PCR →
        TPM_EVENTLOG_UNLOGGED_PCR) and facts from the checked PCRs only: secure boot (PCR7), EFI boot
        applications (PCR4), separators (0–7, error → TPM_EVENTLOG_SEPARATOR_ERROR), GCE NonHostInfo
        confidential technology and firmware version (PCR0), GRUB kernel command line (PCR8).
    ``event_log_claims(VerifiedEventLog) -> dict``  normalized ``tpm.*`` facts (secure_boot, boot,
                                                 event_count, separators, gce_confidential_technology, ...).

Claims helpers
    ``quote_claims(VerifiedQuote) -> dict``      normalized ``tpm`` raw fields (pcrs per bank hex, clock, ...).

Error codes live in :mod:`attestation_broker.evidence.tpm.errors` (``TPM_*``); the nonce check raises the generic
``NONCE_BINDING_MISMATCH``.
"""

from __future__ import annotations

from .abi import Attest, ClockInfo, PcrSelection, Signature, TpmPublic, parse_attest, parse_signature, parse_tpmt_public
from .checks import VerifiedQuote, pcr_digest, verify_quote
from .claims import quote_claims
from .eventlog import (
    Event,
    EventLog,
    SecureBootState,
    VerifiedEventLog,
    event_log_claims,
    initial_value,
    parse_event_log,
    replay,
    verify_event_log,
)
from .keys import AkPublic, load_ak_public

__all__ = [
    "AkPublic",
    "Attest",
    "ClockInfo",
    "Event",
    "EventLog",
    "PcrSelection",
    "SecureBootState",
    "Signature",
    "TpmPublic",
    "VerifiedEventLog",
    "VerifiedQuote",
    "event_log_claims",
    "initial_value",
    "load_ak_public",
    "parse_attest",
    "parse_event_log",
    "parse_signature",
    "parse_tpmt_public",
    "pcr_digest",
    "quote_claims",
    "replay",
    "verify_event_log",
    "verify_quote",
]
