"""The Verifier protocol every evidence kind implements (docs/architecture.md "Verifier protocol").

A verifier takes a :class:`Submission` (evidence bytes, extra files recognized by content, kind-specific
envelope fields, the expected nonce binding) and a :class:`VerifyContext` (injected time, collateral
cache, policy section, settings) and either returns an :class:`~attestation_broker.appraisal.Appraisal`
or raises a typed :class:`~attestation_broker.errors.BrokerError`. Verifiers hold no per-request state
and are built once.
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
    # This kind's section of the policy document (``{}``: the kind's default policy).
    policy: Mapping[str, Any] = field(default_factory=dict)


class Verifier(Protocol):
    @property
    def kind(self) -> str: ...

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        """Verify, appraise and normalize; raise a BrokerError on any failure."""
        ...
