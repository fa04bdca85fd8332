"""AMD SEV-SNP evidence: the reusable API for the ``snp`` kind and the composite kinds that carry an SNP
report (``azure-vtpm`` inside an Azure HCL report, ``gcp-vtpm`` inside go-tpm-tools protobuf).

Stable entry points (signatures will not change):

* :func:`parse_report` — structure-only parse of an ATTESTATION_REPORT (v2–v5).
* :func:`verify_snp_evidence` — full verification + appraisal + claim normalization, returning a
  frozen :class:`SnpResult`.

Example for a composite verifier::

    from attestation_broker.evidence.snp import verify_snp_evidence

    result = verify_snp_evidence(
        report_bytes,                  # 1184-byte report (padding / trailing cert table allowed)
        [vcek_der_or_pem, ...],        # certs (PEM/DER), AMD CRLs, or a cert-table blob; may be empty
        ctx,                           # the caller's VerifyContext (collateral cache, now, settings)
        expected_report_data=binding,  # exact 64 bytes REPORT_DATA must equal, or None to skip
    )
    result.trustworthiness_vector, result.attester_claims, result.verifier_claims, result.findings  # facts only
"""

from __future__ import annotations

from attestation_broker.evidence.snp.abi import AttestationReport, TcbVersion, parse_report
from attestation_broker.evidence.snp.pipeline import SnpResult, verify_snp_evidence

__all__ = ["AttestationReport", "SnpResult", "TcbVersion", "parse_report", "verify_snp_evidence"]
