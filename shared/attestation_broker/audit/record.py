"""Decision records: exactly one per attestation decision, pass or fail (docs/architecture.md "Audit").

A record carries what an auditor needs and nothing secret: correlation id, kind, evidence SHA-256
(never the evidence), verdict, error code, a claims summary, token ``jti``, collateral identities
and latency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
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
    failed_rules: tuple[str, ...] = ()  # names of the policy rules that refused the result
    method: str = "POST"
    user_agent: str | None = None
    remote_ip: str | None = None
    trace: str | None = None

    def payload(self) -> dict[str, Any]:
        """The record as plain JSON values (dicts, lists, scalars), in field order. Built field by field:
        ``dataclasses.asdict`` deep-copies every leaf and cost about a sixth of a whole warm SNP attestation."""
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["collateral"] = [_plain(c) for c in self.collateral]
        data["policy_ids"] = list(self.policy_ids)
        data["failed_rules"] = list(self.failed_rules)
        data["claims_summary"] = _plain(self.claims_summary)
        return data


_FIELD_NAMES = tuple(f.name for f in fields(DecisionRecord))


def _plain(value: Any) -> Any:
    """Mappings as dicts and sequences as lists, recursively (what ``asdict`` gave), without copying scalars."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


EVIDENCE_DIGEST_DOMAIN = b"attestation-broker/evidence/v1"


def evidence_digest(
    evidence: bytes, extras: Sequence[bytes] = (), fields: Mapping[str, Any] | None = None, user_data: bytes = b""
) -> str:
    """Hex SHA-256 naming exactly what a verifier was given (``evidence_sha256`` in records and tokens).

    Evidence alone (no extras, no envelope fields, no user data) hashes as its bytes, so the digest of a
    single-file submission is what ``sha256sum`` prints. Otherwise the digest covers every part, in this
    order, each framed as ``len(label) (1 byte) ‖ label ‖ len(part) (8 bytes, big-endian) ‖ part`` after
    the domain string ``attestation-broker/evidence/v1``: ``evidence``; each ``extra`` in the order
    submitted; ``fields`` as canonical JSON (sorted keys, no whitespace, UTF-8); ``user_data``.
    """
    if not extras and not fields and not user_data:
        return hashlib.sha256(evidence).hexdigest()
    digest = hashlib.sha256(EVIDENCE_DIGEST_DOMAIN)
    parts: list[tuple[bytes, bytes]] = [(b"evidence", evidence)]
    parts += [(b"extra", extra) for extra in extras]
    if fields:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        parts.append((b"fields", canonical.encode("utf-8", errors="surrogatepass")))
    if user_data:
        parts.append((b"user_data", user_data))
    for label, data in parts:
        digest.update(bytes([len(label)]) + label + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


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
