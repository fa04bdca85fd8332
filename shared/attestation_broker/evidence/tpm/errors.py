"""Error codes of the TPM core and the plain ``tpm`` evidence kind (shared by the vTPM composites).

The nonce binding (quote extraData) reuses the generic ``NONCE_BINDING_MISMATCH``; policy outcomes (pinned
AK, PCR reference values, secure boot) are rules of the policy engine, refused as ``POLICY_REJECTED``.
Everything TPM-structural is declared here.
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

# Structures (TPM 2.0 Part 2).
TPM_ATTEST_MALFORMED = define(
    "TPM_ATTEST_MALFORMED", MalformedInput, "The TPMS_ATTEST structure is truncated or has bad lengths."
)
TPM_ATTEST_NOT_QUOTE = define(
    "TPM_ATTEST_NOT_QUOTE", MalformedInput, "The TPMS_ATTEST is not a TPM-generated quote (magic or type)."
)
TPM_SIGNATURE_MALFORMED = define(
    "TPM_SIGNATURE_MALFORMED", MalformedInput, "The quote signature is not a TPMT_SIGNATURE or a bare signature."
)
TPM_AK_MALFORMED = define(
    "TPM_AK_MALFORMED", MalformedInput, "The attestation key is not a TPM2B_PUBLIC/TPMT_PUBLIC, SPKI or JWK."
)
TPM_AK_UNSUPPORTED = define(
    "TPM_AK_UNSUPPORTED", MalformedInput, "The attestation key type, curve or scheme is not supported."
)
TPM_PCRS_MALFORMED = define("TPM_PCRS_MALFORMED", MalformedInput, "The supplied PCR values cannot be decoded.")

# Verification.
TPM_SIGNATURE_INVALID = define(
    "TPM_SIGNATURE_INVALID", VerificationFailed, "The quote signature does not verify with the attestation key."
)
TPM_SIGNATURE_SCHEME_MISMATCH = define(
    "TPM_SIGNATURE_SCHEME_MISMATCH",
    VerificationFailed,
    "The signature algorithm does not match the attestation key or the key's restricted scheme.",
)
TPM_AK_NOT_RESTRICTED = define(
    "TPM_AK_NOT_RESTRICTED",
    VerificationFailed,
    "The TPM attestation key is not a restricted signing key, so it could sign forged quotes.",
)
TPM_PCR_BANK_NOT_QUOTED = define(
    "TPM_PCR_BANK_NOT_QUOTED", VerificationFailed, "The quote does not select the requested PCR bank."
)
TPM_PCR_VALUES_MISSING = define(
    "TPM_PCR_VALUES_MISSING", VerificationFailed, "A PCR selected by the quote has no supplied value."
)
TPM_PCR_DIGEST_MISMATCH = define(
    "TPM_PCR_DIGEST_MISMATCH", VerificationFailed, "The supplied PCR values do not hash to the quote's pcrDigest."
)

# Event log (TCG PC Client Platform Firmware Profile).
TPM_EVENTLOG_MALFORMED = define("TPM_EVENTLOG_MALFORMED", MalformedInput, "The TCG event log cannot be parsed.")
TPM_EVENTLOG_BANK_MISSING = define(
    "TPM_EVENTLOG_BANK_MISSING", VerificationFailed, "The event log has no digests for the quoted PCR bank."
)
TPM_EVENTLOG_REPLAY_MISMATCH = define(
    "TPM_EVENTLOG_REPLAY_MISMATCH", VerificationFailed, "Replaying the event log does not give the quoted PCR values."
)
TPM_EVENTLOG_UNLOGGED_PCR = define(
    "TPM_EVENTLOG_UNLOGGED_PCR",
    VerificationFailed,
    "A quoted PCR has no events in the log but is not at its reset value.",
)
TPM_EVENTLOG_EVENT_DIGEST_MISMATCH = define(
    "TPM_EVENTLOG_EVENT_DIGEST_MISMATCH",
    VerificationFailed,
    "An event whose content is interpreted does not hash to its logged digest.",
)
TPM_EVENTLOG_SEPARATOR_ERROR = define(
    "TPM_EVENTLOG_SEPARATOR_ERROR", VerificationFailed, "The event log records an error separator."
)

# Appraisal.
