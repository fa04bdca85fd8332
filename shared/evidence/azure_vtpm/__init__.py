"""``azure-vtpm`` evidence: Azure CVM HCL report (SEV-SNP or TDX) + runtime JSON + vTPM quote by HCLAkPub.

Composes the SEV-SNP verifier (:mod:`shared.evidence.snp`), the TDX verifier (:mod:`shared.evidence.tdx`)
and the TPM core (:mod:`shared.evidence.tpm`); HCL parsing is :mod:`.hcl`, containers :mod:`.envelope`.
"""

from __future__ import annotations

from .verifier import AzureVtpmVerifier

__all__ = ["AzureVtpmVerifier"]
