"""Decision records: exactly one per attestation decision, pass or fail (docs/architecture.md "Audit").

A record carries what an auditor needs and nothing secret: correlation id, kind, evidence SHA-256
(never the evidence), verdict, error code, a claims summary, token ``jti``, collateral identities
and latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class DecisionRecord:
    correlation_id: str
    route: str
    kind: str | None
    verdict: str  # "affirming" | "warning" | "contraindicated" | "none" | "error"
    latency_ms: float
    evidence_sha256: str | None = None
    error_code: str | None = None
    http_status: int = 200
    claims_summary: Mapping[str, Any] = field(default_factory=dict)
    token_jti: str | None = None
    collateral: tuple[Mapping[str, Any], ...] = ()
    policy_ids: tuple[str, ...] = ()
    # The federation audience of a token exchange (RFC 8693), when the decision is one.
    audience: str | None = None
    method: str = "POST"
    user_agent: str | None = None
    remote_ip: str | None = None
    trace: str | None = None

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["collateral"] = [dict(c) for c in self.collateral]
        data["policy_ids"] = list(self.policy_ids)
        data["claims_summary"] = dict(self.claims_summary)
        return data


def summarize(attester_claims: Mapping[str, Any]) -> dict[str, Any]:
    """The few claims worth logging for every decision."""
    tcb = attester_claims.get("tcb")
    return {
        "tee": attester_claims.get("tee"),
        "platform": attester_claims.get("platform"),
        "measurement": attester_claims.get("measurement"),
        "dbgstat": attester_claims.get("dbgstat"),
        "tcb_status": tcb.get("status") if isinstance(tcb, Mapping) else None,
    }
