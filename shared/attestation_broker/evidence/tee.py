"""The SEV-SNP or TDX part of a composite vTPM kind (``gcp-vtpm``, ``azure-vtpm``), reduced to what the
composite needs: one value built from either verifier's result, so both composites read it the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attestation_broker.evidence.snp import SnpResult
    from attestation_broker.evidence.tdx import TdxResult


@dataclass(frozen=True)
class TeeOutcome:
    tee: str  # "sev-snp" | "tdx"
    trustworthiness_vector: Mapping[str, int]
    attester_claims: Mapping[str, Any]
    verifier_claims: Mapping[str, Any]
    findings: tuple[str, ...]

    @classmethod
    def from_snp(cls, snp: SnpResult) -> TeeOutcome:
        return cls(
            "sev-snp",
            snp.trustworthiness_vector,
            snp.attester_claims,
            snp.verifier_claims,
            tuple(snp.findings),
        )

    @classmethod
    def from_tdx(cls, tdx: TdxResult) -> TeeOutcome:
        return cls(
            "tdx",
            tdx.trustworthiness_vector,
            tdx.attester_claims,
            tdx.verifier_claims,
            tuple(tdx.findings),
        )
