"""``gcp-vtpm`` evidence: go-tpm-tools ``Attestation`` from GCE vTPMs, optionally with SEV-SNP / TDX reports.

Composes the TPM core (:mod:`shared.evidence.tpm`), the SEV-SNP verifier (:mod:`shared.evidence.snp`) and
the TDX verifier (:mod:`shared.evidence.tdx`); what is GCE-specific lives here: the protobuf schema
(:mod:`.proto`), the Google AK certificate chain and instance identity (:mod:`.akcert`).
"""

from __future__ import annotations

from .verifier import GcpVtpmVerifier

__all__ = ["GcpVtpmVerifier"]
