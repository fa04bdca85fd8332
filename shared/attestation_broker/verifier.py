"""The Verifier protocol every evidence kind implements (docs/architecture.md "Verifier protocol", docs/policy.md).

A verifier takes a :class:`Submission` (evidence bytes, extra files recognized by content, kind-specific
envelope fields, the expected nonce binding) and a :class:`VerifyContext` (injected time, collateral
cache, settings) and either returns an :class:`~attestation_broker.appraisal.Appraisal` of verified facts
or raises a typed :class:`~attestation_broker.errors.BrokerError`. Verifiers hold no per-request state
and are built once.

Issuance contract (the same for every kind, enforced once in ``usecases.Broker.attest``): a verifier never
reads the operator's policy and never decides whether a token is issued. It grades facts (TCB status,
debug, chain, configuration) into registered AR4SI values; the policy engine then evaluates the operator's
policy for the kind, and **a token is issued only when no rule failed and the result is affirming or
warning**. Everything else is 403 ``POLICY_REJECTED`` with no token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from attestation_broker.appraisal import Appraisal
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.trust.cache import CollateralCache


@dataclass(frozen=True)
class Submission:
    evidence: bytes
    extras: tuple[bytes, ...] = ()
    # Kind-specific JSON envelope fields, decoded from JSON but not interpreted by the API layer.
    fields: Mapping[str, Any] = field(default_factory=dict)
    binding: ExpectedBinding | None = None


@dataclass(frozen=True)
class VerifyContext:
    now: datetime
    collateral: CollateralCache
    settings: Settings


class Verifier(Protocol):
    @property
    def kind(self) -> str: ...

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        """Verify, grade facts and normalize; raise a BrokerError on any verification failure.

        Never consults policy and never issues: the Broker applies the policy engine and the issuance
        contract (a token only for affirming/warning with no failed rule) to whatever this returns."""
        ...
