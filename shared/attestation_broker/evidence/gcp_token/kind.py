"""The ``gcp-token`` Verifier: Google Cloud Attestation / Confidential Space OIDC and PKI tokens.

Input: the compact JWS as the evidence bytes (or the envelope field ``token``). The flow is the shared
upstream-token one (:mod:`attestation_broker.evidence.jose.verifier`); see :mod:`.checks` for the checks,
:mod:`.claims` for normalization and :mod:`.appraise` for the grading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attestation_broker.evidence.gcp_token import appraise, checks, claims
from attestation_broker.evidence.jose.keys import KeySource
from attestation_broker.evidence.jose.verifier import UpstreamTokenVerifier, Verdict, token_inputs
from attestation_broker.verifier import Submission, VerifyContext

INPUTS = token_inputs("gcp-token")


class GcpTokenVerifier(UpstreamTokenVerifier[checks.VerifiedGcpToken]):
    kind = "gcp-token"
    inputs = INPUTS

    def verify_token(
        self, token: bytes, submission: Submission, ctx: VerifyContext, keys: KeySource, *, max_bytes: int
    ) -> checks.VerifiedGcpToken:
        return checks.verify_token(token, submission, ctx, keys, max_bytes=max_bytes)

    def attester_claims(self, verified: checks.VerifiedGcpToken) -> dict[str, Any]:
        return claims.attester_claims(verified.claims)

    def appraise(self, verified: checks.VerifiedGcpToken, attester: Mapping[str, Any]) -> Verdict:
        return appraise.appraise(verified, attester, appraise.FACTS)
