"""``azure-vtpm`` evidence: Azure CVM HCL report (SEV-SNP or TDX) + runtime JSON + vTPM quote by HCLAkPub.

Composes the SEV-SNP verifier (:mod:`attestation_broker.evidence.snp`), the TDX verifier
(:mod:`attestation_broker.evidence.tdx`) and the TPM core (:mod:`attestation_broker.evidence.tpm`); HCL parsing is
:mod:`.hcl`, containers :mod:`.envelope`.
"""

from __future__ import annotations

from .kind import AzureVtpmVerifier

__all__ = ["AzureVtpmVerifier"]
