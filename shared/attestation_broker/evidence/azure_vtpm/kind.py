"""The ``azure-vtpm`` Verifier: Azure HCL report + TPM quote (+ TD quote / VCEK) → Appraisal.

Evidence and extras are recognized by content (:mod:`.envelope`); the checks are in :mod:`.pipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attestation_broker.appraisal import Appraisal
from attestation_broker.verifier import Submission, VerifyContext

from .appraise import FACTS, appraise
from .claims import attester_claims, verifier_claims
from .envelope import INPUTS, assemble
from .pipeline import verify_evidence

if TYPE_CHECKING:
    from attestation_broker.evidence.snp.checks import AmdTrust
    from attestation_broker.evidence.tdx import TdxTrust


class AzureVtpmVerifier:
    """``tdx_trust`` / ``snp_trust`` are test seams passed to :func:`.pipeline.verify_evidence` (see its module
    doc); the registry never passes them. None = the pinned Intel / AMD roots."""

    kind = "azure-vtpm"
    inputs = INPUTS

    def __init__(self, *, tdx_trust: TdxTrust | None = None, snp_trust: AmdTrust | None = None) -> None:
        self._tdx_trust = tdx_trust
        self._snp_trust = snp_trust

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        policy = FACTS
        evidence = assemble(submission.evidence, submission.extras, submission.fields)
        verified = verify_evidence(
            evidence, ctx, submission.binding, tdx_trust=self._tdx_trust, snp_trust=self._snp_trust
        )
        vector, findings = appraise(verified, policy)
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=vector,
            attester_claims=attester_claims(verified),
            verifier_claims=verifier_claims(verified),
            findings=findings,
        )
