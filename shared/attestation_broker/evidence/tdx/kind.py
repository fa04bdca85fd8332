"""The ``tdx`` Verifier: decode the submission and hand it to :func:`verify_tdx_evidence`.

Evidence: the raw quote bytes (or the quote as hex text, ``0x`` allowed). Envelope field
``collateral`` (optional): a dcap-qvl ``QuoteCollateralV3`` JSON object to use instead of fetching
from Intel PCS; it is verified exactly like fetched collateral and recorded with source ``evidence``.
The same document may come as an extra file instead (CLI ``verify tdx QUOTE COLLATERAL.json``); any other
extra, or collateral given twice, is MALFORMED_EVIDENCE (never silently ignored).
"""

from __future__ import annotations

import binascii
import json

from attestation_broker import jsonlimits
from attestation_broker.appraisal import Appraisal
from attestation_broker.errors import MALFORMED_EVIDENCE
from attestation_broker.evidence.tdx import TdxCollateral, TdxTrust, verify_tdx_evidence
from attestation_broker.evidence.tdx.collateral import looks_like_dcap_qvl_json
from attestation_broker.inputs import InputSpec, Role
from attestation_broker.verifier import Submission, VerifyContext

# The quote is the evidence; dcap-qvl collateral may travel in the envelope field or as one extra file
# (recognized by content): the field and an extra are two candidates for one role, refused as a duplicate.
INPUTS = InputSpec("tdx", fields={"collateral": "collateral"}, roles=(Role("collateral", looks_like_dcap_qvl_json),))


def _quote_bytes(evidence: bytes) -> bytes:
    text = evidence.strip()
    if text[:2] in (b"0x", b"0X"):
        text = text[2:]
    if text and all(c in b"0123456789abcdefABCDEF" for c in text[:64]) and len(text) % 2 == 0:
        try:
            return binascii.unhexlify(text)
        except binascii.Error:
            raise MALFORMED_EVIDENCE("TDX quote hex does not decode") from None
    return evidence


class TdxVerifier:
    """``trust`` is a test seam (like :func:`verify_tdx_evidence`'s): tests build a verifier with a generated
    Intel-like PKI; :func:`attestation_broker.registry.default_verifiers` never passes it. None = the pinned
    Intel roots."""

    kind = "tdx"
    inputs = INPUTS

    def __init__(self, *, trust: TdxTrust | None = None) -> None:
        self._trust = trust

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        collected = INPUTS.collect(submission.evidence, submission.extras, submission.fields)
        override = None
        supplied = collected.one("collateral")
        if "collateral" in submission.fields:
            value = submission.fields["collateral"]
            if not isinstance(value, dict | str):
                raise MALFORMED_EVIDENCE("field collateral must be a dcap-qvl collateral object")
            supplied = (json.dumps(value) if isinstance(value, dict) else value).encode("utf-8", "surrogatepass")
        if supplied is not None:
            if jsonlimits.depth(supplied) > jsonlimits.MAX_DEPTH:
                # A JSON text inside a JSON string (or an extra file) escapes the request's depth limit.
                raise MALFORMED_EVIDENCE("collateral is nested too deeply")
            override = TdxCollateral.from_dcap_qvl_json(supplied)
        result = verify_tdx_evidence(
            _quote_bytes(submission.evidence),
            ctx,
            expected_report_data=submission.binding.report_data() if submission.binding else None,
            collateral_override=override,
            trust=self._trust,
        )
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=result.trustworthiness_vector,
            attester_claims=result.attester_claims,
            verifier_claims=result.verifier_claims,
            findings=result.findings,
        )
