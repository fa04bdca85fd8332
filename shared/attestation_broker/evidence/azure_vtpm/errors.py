"""Error codes of the ``azure-vtpm`` evidence kind (generic codes live in :mod:`attestation_broker.errors`).

TPM quote failures surface with the TPM core's ``TPM_*`` codes, the hardware report's with ``SNP_*`` /
``TDX_*``. Only HCL-report and envelope specifics are here.
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

AZURE_VTPM_HCL_MALFORMED = define(
    "AZURE_VTPM_HCL_MALFORMED",
    MalformedInput,
    "The HCL report (vTPM NV index 0x01400001) is truncated or its header/length fields are inconsistent.",
)
AZURE_VTPM_HCL_UNSUPPORTED = define(
    "AZURE_VTPM_HCL_UNSUPPORTED",
    MalformedInput,
    "The HCL report type or runtime-data hash type is not supported (SNP/TDX with SHA-256 only).",
)
AZURE_VTPM_RUNTIME_MALFORMED = define(
    "AZURE_VTPM_RUNTIME_MALFORMED",
    MalformedInput,
    "The HCL runtime data is not the expected JSON (keys with HCLAkPub, vm-configuration).",
)
AZURE_VTPM_RUNTIME_BINDING_MISMATCH = define(
    "AZURE_VTPM_RUNTIME_BINDING_MISMATCH",
    VerificationFailed,
    "SHA-256 of the HCL runtime data is not the hardware report's REPORT_DATA[0:32] (or [32:64] is not zero).",
)
AZURE_VTPM_EVIDENCE_MALFORMED = define(
    "AZURE_VTPM_EVIDENCE_MALFORMED",
    MalformedInput,
    "The Azure vTPM evidence envelope (JSON, bincode quote, .msg/.sig) cannot be decoded or is incomplete.",
)
AZURE_VTPM_VMPL_NOT_ZERO = define(
    "AZURE_VTPM_VMPL_NOT_ZERO",
    VerificationFailed,
    "The SEV-SNP report was not produced at VMPL 0, so it does not come from the Azure HCL (paravisor).",
)
AZURE_VTPM_TD_QUOTE_MISMATCH = define(
    "AZURE_VTPM_TD_QUOTE_MISMATCH",
    VerificationFailed,
    "The TD quote body (MRTD, RTMRs, REPORTDATA, attributes) differs from the HCL report's TDREPORT.",
)
AZURE_VTPM_TD_QUOTE_MISSING = define(
    "AZURE_VTPM_TD_QUOTE_MISSING",
    VerificationFailed,
    "A TDX HCL report needs the TD quote that signs its TDREPORT; none was supplied.",
)
