"""The ``gcp-token`` Verifier: Google Cloud Attestation / Confidential Space OIDC and PKI tokens.

Input: the compact JWS as the evidence bytes (or the envelope field ``token``). See :mod:`.checks` for the
checks, :mod:`.claims` for normalization and :mod:`.appraise` for the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from attestation_broker.appraisal import Appraisal
from attestation_broker.evidence.gcp_token.appraise import FACTS, appraise
from attestation_broker.evidence.gcp_token.checks import verify_token
from attestation_broker.evidence.gcp_token.claims import attester_claims
from attestation_broker.evidence.jose.jws import MAX_TOKEN_BYTES, token_text
from attestation_broker.evidence.jose.keys import KeySource
from attestation_broker.inputs import InputSpec
from attestation_broker.verifier import Submission, VerifyContext

# The compact JWS, as the evidence bytes or (with empty evidence) the envelope field ``token``; no extras.
INPUTS = InputSpec("gcp-token", fields={"token": "token"}, evidence_role="token")


class GcpTokenVerifier:
    kind = "gcp-token"
    inputs = INPUTS

    def __init__(
        self,
        *,
        key_url_override: Mapping[str, str] | None = None,
        refetch_cooldown_seconds: int = 300,
        key_ttl_seconds: int = 3600,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        """``key_url_override`` maps URL prefixes to replacement bases (tests and local replay only)."""
        self._keys = KeySource(
            url_override=key_url_override,
            refetch_cooldown=timedelta(seconds=refetch_cooldown_seconds),
            ttl=timedelta(seconds=key_ttl_seconds),
        )
        self._max_token_bytes = max_token_bytes

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        INPUTS.collect(submission.evidence, submission.extras, submission.fields)
        policy = FACTS
        token = token_text(submission.evidence, submission.fields, max_bytes=self._max_token_bytes)
        verified = verify_token(token, submission, ctx, self._keys, max_bytes=self._max_token_bytes)
        claims = attester_claims(verified.claims)
        verdict = appraise(verified, claims, policy)
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=verdict.vector,
            attester_claims=claims,
            verifier_claims={
                "evidence_kind": self.kind,
                "collateral": [dict(c) for c in verified.collateral],
                "bindings": {"nonce": "checked" if verified.nonce_checked else "not-requested"},
                "upstream": dict(verified.upstream),
            },
            findings=verdict.findings,
        )
