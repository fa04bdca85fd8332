"""Policy helpers for tests: build a policy document from rules and evaluate an appraisal under it with the
real engine (the same code path as ``Broker.attest``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from attestation_broker.appraisal import Appraisal
from attestation_broker.policy import Decision, PolicyEngine, PolicySet, load_document


def document(kind_rules: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``{"snp": {...rules...}}`` → a version-1 document with one policy ``<kind>-test`` per kind."""
    return {
        "version": 1,
        "policies": {f"{kind}-test": {"kinds": [kind], "rules": dict(rules)} for kind, rules in kind_rules.items()},
    }


def policy_set(doc: Mapping[str, Any]) -> PolicySet:
    """Accepts a full document or the ``{kind: rules}`` shorthand."""
    full = dict(doc) if "policies" in doc else document(doc)
    return load_document(json.dumps(full), "test-policy")


def decide(
    appraisal: Appraisal,
    rules: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
    nonce_bound: bool = False,
) -> Decision:
    """Evaluate ``appraisal`` under ``rules`` (None: the kind's built-in default policy)."""
    policies = policy_set({appraisal.kind: rules}) if rules is not None else PolicySet({})
    return PolicyEngine().evaluate(
        policies.for_kind(appraisal.kind),
        appraisal,
        now=now or datetime.now(UTC),
        nonce_bound=nonce_bound,
    )


def failed(decision: Decision) -> list[str]:
    return [r.rule for r in decision.failed]
