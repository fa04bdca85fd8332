"""BROKER_FIXED_TIME pins the instant evidence is verified as of, never the token or nonce clock."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from attestation_broker.api.envelope import Envelope
from attestation_broker.appraisal import Appraisal
from attestation_broker.bootstrap import build_broker
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.registry import Registry
from attestation_broker.usecases import RequestMeta
from attestation_broker.verifier import Submission, VerifyContext

from tests.support.broker import EchoTestVerifier

PINNED = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class SeesTime:
    """Records the verification time it is given, then behaves like the echo verifier."""

    kind: str = "test-echo"
    seen: list[datetime] = field(default_factory=list)

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        self.seen.append(ctx.now)
        return EchoTestVerifier().verify(submission, ctx)


def _broker(tmp_path: Path, fixed_time: str, verifier: SeesTime):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, cache="memory", ledger="off", fixed_time=fixed_time)
    return build_broker(settings, registry=Registry([verifier]))


def test_fixed_time_pins_verification_but_tokens_use_the_real_clock(tmp_path: Path) -> None:
    verifier = SeesTime()
    broker = _broker(tmp_path, "2025-06-01T00:00:00Z", verifier)
    nonce = broker.challenge()["nonce"]
    evidence = hashlib.sha256(bytes.fromhex(nonce)).digest() + b"-"
    result = broker.attest("test-echo", Envelope(evidence=evidence, nonce=nonce), RequestMeta("t", "test"))
    assert verifier.seen == [PINNED]
    real = datetime.now(UTC).timestamp()
    assert abs(result.claims["iat"] - real) < 60
    # a standard JWT library accepts the token now: exp/nbf/iat are checked against the wall clock
    key = jwt.PyJWKSet.from_dict(broker.jwks())[jwt.get_unverified_header(result.token)["kid"]].key
    assert jwt.decode(result.token, key, algorithms=["ES256"], audience="attestation-broker")["jti"]
    assert broker.verify_token(result.token, RequestMeta("t", "test"))["jti"] == result.claims["jti"]


def test_without_fixed_time_verification_uses_the_real_clock(tmp_path: Path) -> None:
    verifier = SeesTime()
    _broker(tmp_path, "", verifier).attest("test-echo", Envelope(evidence=bytes(40)), RequestMeta("t", "test"))
    assert abs((verifier.seen[0] - datetime.now(UTC)).total_seconds()) < 60


def test_malformed_fixed_time_is_config_invalid(tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as exc:
        _broker(tmp_path, "yesterday", SeesTime())
    assert exc.value.code.name == "CONFIG_INVALID"
