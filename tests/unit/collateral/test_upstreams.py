"""Several upstreams per vendor: order, 429/Retry-After, circuit breaking, jittered back-off, deadline, max age.

Two loopback replay servers stand in for Intel PCS and a PCCS-compatible cache (or AMD KDS and a mirror) and
answer with recorded collateral, so the real HTTP client runs. Time and sleep are injected: no test waits.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx import TdxResult, verify_tdx_evidence
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.trust.upstreams import RetryPolicy, UpstreamFetcher, parse_upstream, upstreams_from_settings
from attestation_broker.verifier import VerifyContext

from tests.support.replay import ReplayServer, Reply, replay_server
from tests.unit.tdx.support import NOW_C1, c1_bodies, quote_bytes, serve

TCB = "/tdx/certification/v4/tcb?fmspc=90C06F000000"
TARGETS = [
    TCB,
    "/tdx/certification/v4/qe/identity",
    "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
    "/sgx/certification/v4/rootcacrl",
]


class FakeTime:
    """A monotonic clock that only moves when the fetcher sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def second() -> Iterator[ReplayServer]:
    with replay_server() as server:
        yield server


def _settings(primary: ReplayServer, *others: str, **kw: object) -> Settings:
    return Settings(
        intel_pcs_url=primary.base_url,
        intel_root_crl_url=f"{primary.base_url}/sgx/certification/v4/rootcacrl",
        intel_upstreams=others,
        **kw,  # type: ignore[arg-type]
    )


def _ctx(settings: Settings, time_: FakeTime, now: datetime = NOW_C1, **policy: float) -> VerifyContext:
    fetcher = UpstreamFetcher.from_settings(
        HttpFetcher(), settings, clock=time_.clock, sleep=time_.sleep, rng=random.Random(7)
    )
    if policy:
        fetcher.policy = RetryPolicy(**policy)  # type: ignore[arg-type]
    return VerifyContext(now=now, collateral=CollateralCache(fetcher, timeout=2.0), settings=settings)


def _verify(ctx: VerifyContext) -> TdxResult:
    return verify_tdx_evidence(quote_bytes("D8"), ctx, expected_report_data=None)


def _down(server: ReplayServer, status: int, **headers: str) -> None:
    for target in TARGETS:
        server.routes[target] = Reply(b"busy", status, headers)


def test_first_upstream_429_with_retry_after_then_second_serves(replay: ReplayServer, second: ReplayServer) -> None:
    _down(replay, 429, **{"Retry-After": "120"})
    serve(second, "90c06f000000", c1_bodies())
    time_ = FakeTime()
    ctx = _ctx(_settings(replay, f"pccs:{second.base_url}"), time_)
    result = _verify(ctx)
    assert result.tcb.status == "UpToDate"
    # The 429 closed the first upstream for its Retry-After: it was asked once, then skipped.
    assert replay.requests == [TCB]
    assert second.requests == TARGETS
    assert time_.sleeps == []  # failover is immediate; nobody waited on the throttled upstream
    fetcher = ctx.collateral.fetcher
    assert isinstance(fetcher, UpstreamFetcher)
    state = fetcher.status()[f"pcs:{replay.base_url}"]
    assert state["throttled"] == 1 and state["available_in_seconds"] == 120.0
    # The token records where collateral came from (the canonical URL) and that it is fresh.
    assert [c["stale"] for c in result.verifier_claims["collateral"]] == [False] * 4
    # Once Retry-After has passed the first upstream is asked again (and now serves).
    serve(replay, "90c06f000000", c1_bodies())
    time_.now += 121
    fresh = VerifyContext(now=NOW_C1, collateral=CollateralCache(fetcher), settings=ctx.settings)
    assert _verify(fresh).tcb.status == "UpToDate"
    assert replay.requests[1:] == TARGETS


def test_http_date_retry_after(replay: ReplayServer, second: ReplayServer) -> None:
    when = (datetime.now(UTC) + timedelta(seconds=300)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    _down(replay, 503, **{"Retry-After": when})
    serve(second, "90c06f000000", c1_bodies())
    ctx = _ctx(_settings(replay, f"pccs:{second.base_url}"), FakeTime())
    assert _verify(ctx).tcb.status == "UpToDate"
    fetcher = ctx.collateral.fetcher
    assert isinstance(fetcher, UpstreamFetcher)
    assert 250 < float(fetcher.status()[f"pcs:{replay.base_url}"]["available_in_seconds"]) <= 300  # type: ignore[arg-type]


def test_every_upstream_down_past_max_age_is_503(replay: ReplayServer, second: ReplayServer) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    time_ = FakeTime()
    settings = _settings(replay, f"pccs:{second.base_url}", collateral_stale_grace_seconds=86400)
    ctx = _ctx(settings, time_)
    _verify(ctx)  # warm the cache from the primary
    _down(replay, 500)
    _down(second, 502)
    # Inside the maximum age: stale-if-error, flagged in the verifier claims.
    within = VerifyContext(now=datetime(2026, 2, 12, tzinfo=UTC), collateral=ctx.collateral, settings=settings)
    result = _verify(within)
    assert result.verifier_claims["stale"] is True
    assert {c["type"] for c in result.verifier_claims["collateral"] if c["stale"]} >= {"tcb_info", "pck_crl"}
    # Past it: 503, never a pass, and the detail says what expired and when.
    past = VerifyContext(now=datetime(2026, 2, 14, tzinfo=UTC), collateral=ctx.collateral, settings=settings)
    with pytest.raises(BrokerError) as exc:
        _verify(past)
    assert (exc.value.code.name, exc.value.status) == ("COLLATERAL_UNAVAILABLE", 503)
    assert "expired at 2026-02-11T" in exc.value.detail
    assert all(s <= RetryPolicy().max_backoff for s in time_.sleeps)


def test_no_copy_and_everything_down_is_503_within_the_deadline(replay: ReplayServer, second: ReplayServer) -> None:
    _down(replay, 500)
    _down(second, 500)
    time_ = FakeTime()
    ctx = _ctx(_settings(replay, second.base_url), time_, deadline=2.0, rounds=5, backoff=0.5, failure_threshold=100)
    with pytest.raises(BrokerError) as exc:
        _verify(ctx)
    assert exc.value.code.name == "COLLATERAL_UNAVAILABLE"
    assert time_.now - 1000.0 <= 2.0  # the per-fetch deadline bounds all rounds and sleeps
    assert time_.sleeps and all(0 <= s <= 0.5 * 2**i for i, s in enumerate(time_.sleeps))
    assert len(replay.requests) == len(second.requests) == len(time_.sleeps) + 1  # one try per round


def test_circuit_opens_after_consecutive_failures(replay: ReplayServer, second: ReplayServer) -> None:
    _down(replay, 500)
    serve(second, "90c06f000000", c1_bodies())
    time_ = FakeTime()
    ctx = _ctx(_settings(replay, second.base_url), time_, failure_threshold=2, cooldown=60.0)
    _verify(ctx)
    # Two failures (tcb, qe identity) open the circuit; the remaining objects skip the primary.
    assert replay.requests == TARGETS[:2]
    fetcher = ctx.collateral.fetcher
    assert isinstance(fetcher, UpstreamFetcher)
    assert fetcher.status()[f"pcs:{replay.base_url}"]["available_in_seconds"] == 60.0
    time_.now += 61  # half-open: one trial request, which succeeds and closes the circuit
    serve(replay, "90c06f000000", c1_bodies())
    assert fetcher.get(f"{replay.base_url}{TCB}", timeout=1).body == c1_bodies()["tcb_info"]
    assert fetcher.status()[f"pcs:{replay.base_url}"]["consecutive_failures"] == 0


def test_404_moves_on_and_is_not_found_only_when_everyone_says_so(replay: ReplayServer, second: ReplayServer) -> None:
    serve(second, "90c06f000000", c1_bodies())  # the primary has nothing: 404 for everything
    ctx = _ctx(_settings(replay, second.base_url), FakeTime())
    assert _verify(ctx).tcb.status == "UpToDate"
    second.routes.clear()
    fetcher = ctx.collateral.fetcher
    with pytest.raises(BrokerError) as exc:
        fetcher.get(f"{replay.base_url}/tdx/certification/v4/tcb?fmspc=00A06D080000", timeout=1)
    assert exc.value.code.name == "COLLATERAL_NOT_FOUND"


def test_amd_mirror_after_kds(replay: ReplayServer, second: ReplayServer) -> None:
    replay.routes["/vcek/v1/Milan/crl"] = Reply(b"", 429, {"Retry-After": "10"})
    second.routes["/kds/vcek/v1/Milan/crl"] = Reply(b"crl bytes")
    settings = Settings(amd_kds_url=replay.base_url, amd_upstreams=(f"{second.base_url}/kds",))
    fetcher = UpstreamFetcher.from_settings(HttpFetcher(), settings, clock=FakeTime().clock, sleep=FakeTime().sleep)
    got = fetcher.get(f"{replay.base_url}/vcek/v1/Milan/crl", timeout=1)
    assert got.body == b"crl bytes" and got.url == f"{replay.base_url}/vcek/v1/Milan/crl"


def test_routes_and_parsing() -> None:
    settings = Settings(
        intel_upstreams=("pccs:https://pccs.local:8081/", "https://pcs-mirror.example"),
        amd_upstreams=("kds:https://kds-proxy.example/amd",),
    )
    ups = upstreams_from_settings(settings)
    assert [u.name for u in ups["intel"]] == [
        "pcs:https://api.trustedservices.intel.com",
        "pccs:https://pccs.local:8081",
        "pcs:https://pcs-mirror.example",
    ]
    fetcher = UpstreamFetcher.from_settings(HttpFetcher(), settings)
    root = [t for _, t in fetcher.routes(settings.intel_root_crl_url)]
    assert root == [settings.intel_root_crl_url, "https://pccs.local:8081/sgx/certification/v4/rootcacrl"]
    tcb = [t for _, t in fetcher.routes("https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=AA")]
    assert tcb[1] == "https://pccs.local:8081/tdx/certification/v4/tcb?fmspc=AA"
    assert fetcher.routes("https://kdsintf.amd.com/vcek/v1/Genoa/crl")[1][1] == (
        "https://kds-proxy.example/amd/vcek/v1/Genoa/crl"
    )
    assert fetcher.routes("https://login.example/jwks") == []
    with pytest.raises(BrokerError):
        parse_upstream("intel", "ftp://x")
    with pytest.raises(BrokerError):
        Settings.from_env({"BROKER_UPSTREAM_ROUNDS": "many"})
    assert Settings.from_env({"BROKER_INTEL_UPSTREAMS": "pccs:https://a, https://b"}).intel_upstreams == (
        "pccs:https://a",
        "https://b",
    )
