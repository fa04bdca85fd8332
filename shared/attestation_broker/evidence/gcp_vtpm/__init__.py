"""``gcp-vtpm`` evidence: go-tpm-tools ``Attestation`` from GCE vTPMs, optionally with SEV-SNP / TDX reports.

Composes the TPM core (:mod:`attestation_broker.evidence.tpm`), the SEV-SNP verifier
(:mod:`attestation_broker.evidence.snp`) and the TDX verifier (:mod:`attestation_broker.evidence.tdx`);
what is GCE-specific lives here: the protobuf schema (:mod:`.proto`), the Google AK certificate chain and
instance identity (:mod:`.akcert`).
"""

from __future__ import annotations

from .kind import GcpVtpmVerifier

__all__ = ["GcpVtpmVerifier"]
