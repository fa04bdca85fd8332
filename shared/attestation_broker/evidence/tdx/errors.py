"""TDX-specific error codes (the generic ones live in :mod:`attestation_broker.errors`).

Every code names what failed, never the evidence bytes.
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

TDX_QUOTE_TRUNCATED = define(
    "TDX_QUOTE_TRUNCATED", MalformedInput, "The TDX quote is shorter than its own length fields say."
)
TDX_QUOTE_UNSUPPORTED = define(
    "TDX_QUOTE_UNSUPPORTED",
    MalformedInput,
    "The quote version, TEE type, attestation key type, body type or certification data type is not supported.",
)
TDX_CERT_DATA_INVALID = define(
    "TDX_CERT_DATA_INVALID", MalformedInput, "The quote certification data (PCK chain) cannot be decoded."
)
TDX_QUOTE_SIGNATURE_INVALID = define(
    "TDX_QUOTE_SIGNATURE_INVALID", VerificationFailed, "The quote signature does not verify with the attestation key."
)
TDX_QE_REPORT_SIGNATURE_INVALID = define(
    "TDX_QE_REPORT_SIGNATURE_INVALID", VerificationFailed, "The QE report signature does not verify with the PCK key."
)
TDX_QE_REPORT_DATA_MISMATCH = define(
    "TDX_QE_REPORT_DATA_MISMATCH",
    VerificationFailed,
    "The QE report data does not bind the attestation key and QE authentication data.",
)
TDX_QE_IDENTITY_MISMATCH = define(
    "TDX_QE_IDENTITY_MISMATCH", VerificationFailed, "The QE report does not match Intel's TD_QE identity."
)
TDX_PCK_EXTENSIONS_INVALID = define(
    "TDX_PCK_EXTENSIONS_INVALID",
    VerificationFailed,
    "The PCK certificate's Intel SGX extensions are missing or malformed.",
)
TDX_FMSPC_MISMATCH = define(
    "TDX_FMSPC_MISMATCH", VerificationFailed, "The TCB info FMSPC or PCE ID differs from the PCK certificate's."
)
TDX_TCB_INFO_NOT_TDX = define(
    "TDX_TCB_INFO_NOT_TDX", VerificationFailed, 'The TCB info is not a TDX TCB info (id must be "TDX", version 3).'
)
TDX_TCB_LEVEL_NOT_FOUND = define(
    "TDX_TCB_LEVEL_NOT_FOUND",
    VerificationFailed,
    "No TCB level of Intel's TCB info (platform, TDX module or QE) matches this TD: TCB not supported.",
)
TDX_MODULE_MISMATCH = define(
    "TDX_MODULE_MISMATCH",
    VerificationFailed,
    "MRSIGNERSEAM or SEAM attributes do not match Intel's TDX module identity.",
)
