"""The ``nitro`` Verifier: parse → verify (chain, signature, nonce) → freshness → appraise → normalize.

Evidence is the attestation document as returned by the NSM (``COSE_Sign1`` bytes, tagged or not) or
its base64 text. The kind takes no envelope fields and no extra files: the only trust anchor is the
pinned AWS root, so an extra certificate could never be used and is refused rather than ignored.
Nonce binding: ``nonce`` == SHA-256(broker nonce ‖ user data) (:meth:`ExpectedBinding.nitro_nonce`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from attestation_broker.appraisal import Appraisal
from attestation_broker.inputs import InputSpec
from attestation_broker.verifier import Submission, VerifyContext

from .abi import parse_document
from .appraise import FACTS, appraise
from .checks import check_freshness, verify_document
from .claims import attester_claims, key_confirmation, verifier_claims
from .trust import TrustAnchor, aws_nitro_root

# The COSE document is the only input: no envelope fields, no extra files (the AWS root is pinned).
INPUTS = InputSpec("nitro")


class NitroVerifier:
    kind = "nitro"
    inputs = INPUTS

    def __init__(self, anchor: TrustAnchor | None = None) -> None:
        # Tests inject a generated anchor; production always uses the pinned AWS root (loaded on first use).
        self._anchor = anchor

    @property
    def anchor(self) -> TrustAnchor:
        return self._anchor or aws_nitro_root()

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        INPUTS.collect(submission.evidence, submission.extras, submission.fields)
        policy = FACTS
        skew = timedelta(seconds=ctx.settings.clock_skew_seconds)

        parsed = parse_document(submission.evidence)
        verified = verify_document(parsed, self.anchor, now=ctx.now, skew=skew, binding=submission.binding)
        check_freshness(verified.document, now=ctx.now, skew=skew)

        verdict = appraise(verified.document, policy)
        cnf, public_key = key_confirmation(verified.document)
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=verdict.vector,
            attester_claims=attester_claims(verified, debug=verdict.debug),
            verifier_claims={
                **verifier_claims(verified, public_key=public_key),
                "evidence_issued_at": datetime.fromtimestamp(verified.document.timestamp_ms / 1000, UTC)
                .isoformat()
                .replace("+00:00", "Z"),
            },
            cnf=cnf,
            findings=verdict.findings,
        )
