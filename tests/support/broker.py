"""Builds a broker for tests: temp data dir, memory audit sink, pinned clock, optional extra verifiers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.api.routes import Api
from attestation_broker.appraisal import Appraisal
from attestation_broker.audit.sinks import MemorySink
from attestation_broker.binding import require_equal
from attestation_broker.bootstrap import build_broker
from attestation_broker.config import Settings
from attestation_broker.errors import MALFORMED_EVIDENCE
from attestation_broker.registry import Registry
from attestation_broker.trust.fetch import Fetcher, OfflineFetcher
from attestation_broker.usecases import Broker
from attestation_broker.verifier import Submission, Verifier, VerifyContext

from tests.support.policy import policy_set

FIXED_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class EchoTestVerifier:
    """TEST ONLY: treats the evidence as a JSON-free blob whose first 32 bytes are its 'report data'.

    It exercises the spine (nonce binding, claims, tokens, audit) without hardware evidence.
    """

    kind = "test-echo"

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        if len(submission.evidence) < 32:
            raise MALFORMED_EVIDENCE("test evidence shorter than 32 bytes")
        bindings = {"nonce": "not-requested"}
        if submission.binding is not None:
            require_equal("test evidence", submission.evidence[:32], submission.binding.tpm_extra_data())
            bindings = {"nonce": "checked"}
        debug = submission.evidence[32:33] == b"D"
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector={
                "hardware": ar4si.HW_GENUINE,
                "runtime-opaque": ar4si.RUNTIME_CONTRAINDICATED if debug else ar4si.RUNTIME_ENCRYPTED,
            },
            attester_claims={
                "tee": "sev-snp",
                "platform": "unknown",
                "measurement": submission.evidence[:32].hex(),
                "dbgstat": "enabled" if debug else "disabled",
                "tcb": {"status": "UpToDate"},
            },
            verifier_claims={"bindings": bindings, "collateral": [{"type": "none"}]},
        )


# The echo kind's policy in tests: named "test" (federation tests derive ``sub``/``policy`` from the name).
ECHO_POLICY = {"version": 1, "policies": {"test": {"kinds": ["test-echo"], "rules": {"debug": "forbidden"}}}}


@dataclass
class Harness:
    broker: Broker
    api: Api
    sink: MemorySink
    clock: list[datetime] = field(default_factory=lambda: [FIXED_NOW])


def make_harness(
    tmp_path: Path,
    *,
    verifiers: Sequence[Verifier] = (),
    fetcher: Fetcher | None = None,
    policy: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Harness:
    sink = MemorySink()
    clock = [FIXED_NOW]
    now: Callable[[], datetime] = lambda: clock[0]  # noqa: E731
    base = Settings(data_dir=tmp_path / "data", issuer="https://broker.test", cache="memory")
    for key, value in settings.items():
        base = Settings(**{**base.__dict__, key: value})
    broker = build_broker(
        base,
        registry=Registry(verifiers or [EchoTestVerifier()]),
        fetcher=fetcher or OfflineFetcher(),
        sink=sink,
        policies=policy_set(policy if policy else ECHO_POLICY) if policy or not verifiers else None,
        clock=now,
    )
    return Harness(broker, Api(broker), sink, clock)
