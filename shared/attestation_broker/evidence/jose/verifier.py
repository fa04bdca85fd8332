"""The Verifier shared by the upstream-token kinds (``gcp-token``, ``azure-token``).

Both kinds take one compact JWS (RFC 7515 §7.1) as the evidence bytes or the envelope field ``token``, verify it
with keys fetched only from the kind's pinned issuers (:class:`~.keys.KeySource`), normalize its claims and grade
them. Only those three steps differ per kind, so a kind subclasses :class:`UpstreamTokenVerifier` and supplies
them; the input rule, the key source and the shape of the :class:`~attestation_broker.appraisal.Appraisal`
(verifier claims: collateral, nonce binding, upstream provenance) are the same for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from attestation_broker.appraisal import Appraisal
from attestation_broker.evidence.jose.jws import MAX_TOKEN_BYTES, token_text
from attestation_broker.evidence.jose.keys import KeySource
from attestation_broker.inputs import InputSpec
from attestation_broker.verifier import Submission, VerifyContext


def token_inputs(kind: str) -> InputSpec:
    """The compact JWS, as the evidence bytes or (with empty evidence) the envelope field ``token``; no extras."""
    return InputSpec(kind, fields={"token": "token"}, evidence_role="token")


class VerifiedToken(Protocol):
    """What a kind's ``verify_token`` returns: the provenance every upstream-token appraisal records."""

    @property
    def upstream(self) -> Mapping[str, Any]: ...
    @property
    def collateral(self) -> tuple[Mapping[str, Any], ...]: ...
    @property
    def nonce_checked(self) -> bool: ...


@dataclass(frozen=True)
class Verdict:
    """A kind's grading of a verified token: the AR4SI trustworthiness vector and the reasons for it."""

    vector: dict[str, int]
    findings: tuple[str, ...]


T = TypeVar("T", bound=VerifiedToken)


class UpstreamTokenVerifier(Generic[T]):
    """Verify → normalize → grade one upstream attestation token; subclasses set ``kind``/``inputs`` and the steps."""

    kind: ClassVar[str]
    inputs: ClassVar[InputSpec]

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

    def verify_token(
        self, token: bytes, submission: Submission, ctx: VerifyContext, keys: KeySource, *, max_bytes: int
    ) -> T:
        raise NotImplementedError

    def attester_claims(self, verified: T) -> dict[str, Any]:
        raise NotImplementedError

    def appraise(self, verified: T, claims: Mapping[str, Any]) -> Verdict:
        raise NotImplementedError

    def cnf(self, verified: T) -> Mapping[str, Any] | None:
        """The key the token binds (RFC 7800), where the kind's tokens carry one."""
        return None

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        self.inputs.collect(submission.evidence, submission.extras, submission.fields)
        token = token_text(submission.evidence, submission.fields, max_bytes=self._max_token_bytes)
        verified = self.verify_token(token, submission, ctx, self._keys, max_bytes=self._max_token_bytes)
        claims = self.attester_claims(verified)
        verdict = self.appraise(verified, claims)
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
            cnf=self.cnf(verified),
            findings=verdict.findings,
        )
