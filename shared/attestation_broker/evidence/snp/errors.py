"""Error codes specific to the SEV-SNP evidence kind (generic codes live in :mod:`attestation_broker.errors`)."""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

SNP_REPORT_TRUNCATED = define(
    "SNP_REPORT_TRUNCATED", MalformedInput, "The SEV-SNP attestation report is shorter than its structure."
)
SNP_REPORT_TOO_LARGE = define(
    "SNP_REPORT_TOO_LARGE", MalformedInput, "The SEV-SNP evidence exceeds the size of a report plus certificate table."
)
SNP_REPORT_TRAILING_DATA = define(
    "SNP_REPORT_TRAILING_DATA",
    MalformedInput,
    "Bytes after the SEV-SNP report are neither zero padding nor a certificate table.",
)
SNP_REPORT_VERSION_UNSUPPORTED = define(
    "SNP_REPORT_VERSION_UNSUPPORTED", MalformedInput, "The SEV-SNP report VERSION is not 2, 3, 4 or 5."
)
SNP_REPORT_RESERVED_NONZERO = define(
    "SNP_REPORT_RESERVED_NONZERO", MalformedInput, "A reserved field of the SEV-SNP report is not zero."
)
SNP_SIGNATURE_ALGORITHM_UNSUPPORTED = define(
    "SNP_SIGNATURE_ALGORITHM_UNSUPPORTED",
    MalformedInput,
    "The SEV-SNP report SIGNATURE_ALGO is not ECDSA P-384 with SHA-384.",
)
SNP_SIGNING_KEY_UNSUPPORTED = define(
    "SNP_SIGNING_KEY_UNSUPPORTED",
    VerificationFailed,
    "The SEV-SNP report is not signed by a VCEK or VLEK (SIGNING_KEY none/reserved or MASK_CHIP_KEY set).",
)
SNP_SIGNATURE_INVALID = define(
    "SNP_SIGNATURE_INVALID", VerificationFailed, "The SEV-SNP report signature does not verify with the VCEK/VLEK."
)
SNP_CERT_TABLE_MALFORMED = define(
    "SNP_CERT_TABLE_MALFORMED", MalformedInput, "The SEV-SNP extended-report certificate table is malformed."
)
SNP_CERTIFICATE_MALFORMED = define(
    "SNP_CERTIFICATE_MALFORMED", MalformedInput, "A supplied AMD certificate or CRL cannot be parsed."
)
SNP_CERTIFICATE_MISSING = define(
    "SNP_CERTIFICATE_MISSING",
    MalformedInput,
    "The report is VLEK-signed but no VLEK certificate was supplied (VLEKs are not served publicly by AMD KDS).",
)
SNP_SIGNING_KEY_MISMATCH = define(
    "SNP_SIGNING_KEY_MISMATCH",
    VerificationFailed,
    "The supplied endorsement certificate type does not match the report's SIGNING_KEY field.",
)
SNP_CHIP_ID_MISMATCH = define(
    "SNP_CHIP_ID_MISMATCH", VerificationFailed, "The VCEK hwID extension does not equal the report CHIP_ID."
)
SNP_TCB_MISMATCH = define(
    "SNP_TCB_MISMATCH", VerificationFailed, "The VCEK/VLEK TCB extensions do not equal the report REPORTED_TCB."
)
SNP_PRODUCT_UNKNOWN = define(
    "SNP_PRODUCT_UNKNOWN",
    MalformedInput,
    "The AMD product line (Milan/Genoa/Turin) cannot be determined; pass the 'product' field for v2 reports.",
)
SNP_PRODUCT_MISMATCH = define(
    "SNP_PRODUCT_MISMATCH",
    VerificationFailed,
    "The endorsement certificate names a different AMD product line than the report.",
)
