"""Error codes of the ``nvidia-gpu`` kind (GPU and NVSwitch SPDM evidence, NVIDIA RIMs).

Chain, expiry, revocation, binding and collateral failures reuse the broker-wide codes
(CERT_CHAIN_INVALID, CERT_EXPIRED, CERT_REVOKED, NONCE_BINDING_MISMATCH, COLLATERAL_UNAVAILABLE, ...).
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

NVIDIA_EVIDENCE_MALFORMED = define(
    "NVIDIA_EVIDENCE_MALFORMED",
    MalformedInput,
    "The NVIDIA evidence is not a report (hex or binary) with its PEM chain, or an SDK evidence list.",
)
NVIDIA_REPORT_MALFORMED = define(
    "NVIDIA_REPORT_MALFORMED", MalformedInput, "The SPDM GET_MEASUREMENTS transcript is malformed."
)
NVIDIA_REPORT_SIGNATURE_INVALID = define(
    "NVIDIA_REPORT_SIGNATURE_INVALID",
    VerificationFailed,
    "The SPDM measurement signature does not verify with the leaf of the device certificate chain.",
)
NVIDIA_FWID_MISMATCH = define(
    "NVIDIA_FWID_MISMATCH",
    VerificationFailed,
    "The report's FWID differs from the FWID in the leaf certificate's DICE TcbInfo extension.",
)
NVIDIA_RIM_MALFORMED = define("NVIDIA_RIM_MALFORMED", MalformedInput, "A reference integrity manifest is not a RIM.")
NVIDIA_RIM_SIGNATURE_INVALID = define(
    "NVIDIA_RIM_SIGNATURE_INVALID",
    VerificationFailed,
    "A RIM's XML signature or reference digest does not verify.",
)
NVIDIA_RIM_MISMATCH = define(
    "NVIDIA_RIM_MISMATCH",
    VerificationFailed,
    "A RIM names another product or version than the report's opaque data.",
)
NVIDIA_MEASUREMENT_CONFLICT = define(
    "NVIDIA_MEASUREMENT_CONFLICT",
    VerificationFailed,
    "The driver and VBIOS RIMs both declare the same measurement index active.",
)
NVIDIA_DEVICE_DUPLICATE = define(
    "NVIDIA_DEVICE_DUPLICATE",
    VerificationFailed,
    "Two entries of an evidence list come from the same device certificate.",
)
