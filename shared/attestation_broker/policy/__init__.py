"""Appraisal policy: one document of named policies, one engine over the normalized claims (docs/policy.md)."""

from attestation_broker.policy.document import (
    Policy,
    PolicyDocumentError,
    PolicySet,
    default_policy,
    load_document,
    load_policy_set,
    policy_id,
    schema,
)
from attestation_broker.policy.engine import (
    Decision,
    EvidenceTcbDate,
    PolicyEngine,
    RecordedTcbCurrency,
    RuleResult,
    TcbCurrency,
)

__all__ = [
    "Decision",
    "EvidenceTcbDate",
    "Policy",
    "PolicyDocumentError",
    "PolicyEngine",
    "PolicySet",
    "RecordedTcbCurrency",
    "RuleResult",
    "TcbCurrency",
    "default_policy",
    "load_document",
    "load_policy_set",
    "policy_id",
    "schema",
]
