"""``--watch`` renewal (injected clock and sleep, bounded rounds) and ``--audience`` (RFC 8693 exchange at
``/v1/token``), on the SEV-SNP configfs-tsm stand-in and a loopback broker.

Policy relied on: the default ``snp`` policy ``{}`` (the stand-in report is graded ``warning``), and
``federation_audiences=("https://sts.example",)`` for the exchange.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import pytest
from attestation_broker.client import AttestOptions, AttestResult, Machine, attest, renew_delay, watch
from attestation_broker.client.exchange import verify_token
from attestation_broker.errors import BrokerError
from attestation_broker.federation.errors import ExchangeRefused

from tests.unit.client.platforms import snp_broker, snp_platform

AUDIENCE = "https://sts.example"


def _machine(tmp_path: Path) -> Machine:
    root = tmp_path / "tsm"
    (root / "report").mkdir(parents=True)
    return Machine(tsm_root=root, tsm_files=snp_platform().tsm)


def test_audience_exchange_returns_a_verified_token_for_that_audience(tmp_path: Path) -> None:
    with snp_broker(tmp_path, federation_audiences=(AUDIENCE,)) as broker:
        clock = lambda: broker.harness.clock[0]  # noqa: E731
        result = attest(
            AttestOptions(broker.url, kind="snp", audience=AUDIENCE, machine=_machine(tmp_path)), clock=clock
        )
        assert broker.requests[-2:] == ["POST /v1/token", "GET /jwks"]
        assert result.token != result.attestation_token
        assert result.exchanged is not None and result.exchanged["aud"] == AUDIENCE
        assert jwt.decode(result.token, options={"verify_signature": False})["aud"] == AUDIENCE
        # an audience the broker does not allow: refused with the OAuth error, no token
        with pytest.raises(ExchangeRefused) as exc:
            attest(
                AttestOptions(
                    broker.url, kind="snp", audience="https://other.example", machine=_machine(tmp_path / "b")
                ),
                clock=clock,
            )
        assert exc.value.code.name == "FEDERATE_EXCHANGE_REFUSED"
        assert exc.value.error == "invalid_target" and exc.value.http_status == 400


def test_token_from_another_key_or_for_another_nonce_is_refused(tmp_path: Path) -> None:
    with snp_broker(tmp_path) as broker:
        clock = lambda: broker.harness.clock[0]  # noqa: E731
        result = attest(AttestOptions(broker.url, kind="snp", machine=_machine(tmp_path)), clock=clock)
        from attestation_broker.client.exchange import BrokerClient

        jwks = BrokerClient(broker.url).jwks()
    now = clock()
    assert verify_token(result.token, jwks, now=now, nonce_hex=result.nonce)["jti"] == result.claims["jti"]
    cases = {
        "other nonce": dict(nonce_hex="00" * 32),
        "expired": dict(nonce_hex=result.nonce, now=now + timedelta(days=1)),
        "unknown kid": dict(nonce_hex=result.nonce, jwks={"keys": []}),
    }
    for name, kw in cases.items():
        args = {"now": now, "jwks": jwks, **kw}
        with pytest.raises(BrokerError) as exc:
            verify_token(result.token, args.pop("jwks"), **args)  # type: ignore[arg-type]
        assert exc.value.code.name == "CLIENT_TOKEN_UNVERIFIED", name
    head, body, sig = result.token.split(".")
    forged = f"{head}.{body}.{sig[:-4]}AAAA"
    with pytest.raises(BrokerError) as exc:
        verify_token(forged, jwks, now=now, nonce_hex=result.nonce)
    assert exc.value.code.name == "CLIENT_TOKEN_UNVERIFIED"


def test_watch_renews_before_expiry_and_survives_a_failed_round(tmp_path: Path) -> None:
    with snp_broker(tmp_path) as broker:
        machine = _machine(tmp_path)
        times = broker.harness.clock
        slept: list[float] = []
        tokens: list[AttestResult] = []
        errors: list[str] = []
        fail = {"round": 2}
        rounds = {"n": 0}

        def once() -> AttestResult:
            rounds["n"] += 1
            if rounds["n"] == fail["round"]:
                # the broker is briefly unreachable: the current token is kept, renewal retried
                return attest(AttestOptions("http://127.0.0.1:9", kind="snp", machine=machine), clock=lambda: times[0])
            return attest(AttestOptions(broker.url, kind="snp", machine=machine), clock=lambda: times[0])

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            times[0] = times[0] + timedelta(seconds=seconds)  # the broker and the client share this clock

        obtained = watch(
            once,
            tokens.append,
            clock=lambda: times[0],
            sleep=sleep,
            on_error=lambda exc: errors.append(exc.code.name),
            rounds=4,
        )
    assert obtained == 3 and len(tokens) == 3 and errors == ["CLIENT_BROKER_UNREACHABLE"]
    assert len(slept) == 3  # between rounds only: a bounded run ends with its last token
    ttl = tokens[0].expires_at - int(tokens[0].claims["iat"])
    assert slept[0] == pytest.approx(ttl * 2 / 3)  # renewed at two thirds of the lifetime, before expiry
    assert slept[1] == 10.0  # retry delay after the failed round
    assert len({t.nonce for t in tokens}) == 3  # every renewal is a fresh challenge
    # each token was still valid when the next one arrived
    for before, after in itertools.pairwise(tokens):
        assert int(after.claims["iat"]) < before.expires_at


def test_renew_delay_has_a_floor() -> None:
    now = datetime.fromtimestamp(1_000_000)
    result = AttestResult("snp", "t", {"iat": 1_000_000 - 299, "exp": 1_000_000 + 1}, "00", "t")
    assert renew_delay(result, now) == 5.0
