"""The ``gcp-vtpm`` Verifier: go-tpm-tools Attestation (binary or text protobuf) → Appraisal.

Evidence: the ``Attestation`` bytes. Extras (recognized by content): intermediate / AK certificates
(PEM or DER) for the Google chain, VCEK/ASK certificates and AMD CRLs for an SEV-SNP part.
"""

from __future__ import annotations

from attestation_broker.appraisal import Appraisal
from attestation_broker.evidence.snp.certs import is_certificate, is_crl
from attestation_broker.inputs import InputSpec, Role
from attestation_broker.verifier import Submission, VerifyContext

from .abi import parse_attestation
from .appraise import FACTS, appraise
from .claims import attester_claims, verifier_claims
from .pipeline import TrustOverride, verify_attestation

# No envelope fields; extras are certificates (Google intermediates, AK, AMD VCEK/ASK) and one AMD CRL.
INPUTS = InputSpec(
    "gcp-vtpm",
    roles=(Role("certificates", is_certificate, many=True), Role("crl", is_crl)),
    evidence_role="attestation",
)


class GcpVtpmVerifier:
    """``trust`` is a test seam (generated Google-like / AMD-like / Intel-like roots, :class:`.pipeline.TrustOverride`);
    the registry never passes it. None = the pinned vendor roots."""

    kind = "gcp-vtpm"
    inputs = INPUTS

    def __init__(self, *, trust: TrustOverride | None = None) -> None:
        self._trust = trust

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        INPUTS.collect(submission.evidence, submission.extras, submission.fields)
        policy = FACTS
        attestation = parse_attestation(submission.evidence)
        verified = verify_attestation(
            attestation,
            submission.extras,
            ctx,
            submission.binding,
            ignore_pcrs=policy.ignore_pcrs,
            trust=self._trust,
        )
        vector, findings = appraise(verified, policy)
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=vector,
            attester_claims=attester_claims(verified),
            verifier_claims=verifier_claims(verified),
            findings=findings,
        )
