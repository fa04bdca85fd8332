"""Error codes of the ``gcp-vtpm`` evidence kind (generic codes live in :mod:`attestation_broker.errors`).

Quote, PCR and event-log failures surface with the TPM core's ``TPM_*`` codes; SEV-SNP and TDX report
failures with the ``SNP_*`` / ``TDX_*`` codes of those verifiers. Only what is GCE-specific is here.
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

GCP_VTPM_AK_CERT_MISSING = define(
    "GCP_VTPM_AK_CERT_MISSING",
    VerificationFailed,
    "The attestation carries no AK certificate, so the AK cannot be tied to a Google vTPM.",
)
GCP_VTPM_AK_CERT_MALFORMED = define(
    "GCP_VTPM_AK_CERT_MALFORMED", MalformedInput, "The AK certificate or an intermediate is not a DER/PEM X.509 cert."
)
GCP_VTPM_AK_MISMATCH = define(
    "GCP_VTPM_AK_MISMATCH", VerificationFailed, "The AK certificate's public key is not the attestation's ak_pub."
)
GCP_VTPM_AK_CERT_USAGE = define(
    "GCP_VTPM_AK_CERT_USAGE",
    VerificationFailed,
    "A certificate in the AK chain has the wrong basic constraints or key usage for its position.",
)
GCP_VTPM_INSTANCE_INFO_MALFORMED = define(
    "GCP_VTPM_INSTANCE_INFO_MALFORMED",
    MalformedInput,
    "The GCE instance identity extension (1.3.6.1.4.1.11129.2.1.21) cannot be decoded.",
)
GCP_VTPM_INSTANCE_INFO_MISSING = define(
    "GCP_VTPM_INSTANCE_INFO_MISSING",
    VerificationFailed,
    "The AK certificate has no GCE instance identity extension.",
)
GCP_VTPM_INSTANCE_INFO_MISMATCH = define(
    "GCP_VTPM_INSTANCE_INFO_MISMATCH",
    VerificationFailed,
    "The attestation's instance_info differs from the identity certified in the AK certificate.",
)
GCP_VTPM_NO_QUOTES = define("GCP_VTPM_NO_QUOTES", MalformedInput, "The attestation carries no TPM quote.")
GCP_VTPM_QUOTES_INCONSISTENT = define(
    "GCP_VTPM_QUOTES_INCONSISTENT",
    VerificationFailed,
    "The quotes of one attestation disagree (bank repeated, PCRs of another bank, or different extraData).",
)
GCP_VTPM_TEE_MALFORMED = define(
    "GCP_VTPM_TEE_MALFORMED",
    MalformedInput,
    "The SEV-SNP or TDX attestation message cannot be re-encoded into its hardware format.",
)
GCP_VTPM_TEE_INCONSISTENT = define(
    "GCP_VTPM_TEE_INCONSISTENT",
    VerificationFailed,
    "The TEE report's technology differs from the confidential technology the measured event log declares.",
)
