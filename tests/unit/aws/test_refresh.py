"""Scheduled collateral refresh over moto S3 with real AMD/Intel collateral served by the replay server."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attestation_broker.aws.s3store import S3Store
from attestation_broker.errors import BrokerError
from attestation_broker.trust.cache import CachedObject, CollateralCache
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.trust.refresh import COLLATERAL_TYPES, refresh_store
from cryptography import x509

from tests.support.replay import ReplayServer
from tests.support.vectors import vector

MILAN_CRL = vector("roots/amd/amd_milan_vcek_crl.pem")
GENOA_CRL = vector("roots/amd/amd_genoa_vcek_crl.pem")
VCEK = vector("snp/trustee-milan-v2/test-vcek.der")
TCB_INFO = vector("tdx/collateral-tinfoil-2026-01/tcb_info_90c06f000000.json")
QE_IDENTITY = vector("tdx/collateral-tinfoil-2026-01/qe_identity.json")
PCK_CRL = vector("tdx/collateral-tinfoil-2026-01/pck_crl_platform.crl")
T0 = datetime(2025, 6, 1, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def _seed(store: S3Store, url: str, body: bytes, kind: str | None, fetched_at: datetime = T0) -> None:
    expires = COLLATERAL_TYPES[kind].expires(body, fetched_at) if kind else fetched_at + timedelta(days=1)
    store.put(
        CollateralCache.key(url), CachedObject(url, body, fetched_at, expires, "origin", collateral_type=kind).encode()
    )


def _stored(store: S3Store, url: str) -> CachedObject:
    data = store.get(CollateralCache.key(url))
    assert data is not None
    obj = CachedObject.decode(data, "store")
    assert obj is not None
    return obj


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("crl", MILAN_CRL, x509.load_pem_x509_crl(MILAN_CRL).next_update_utc),
        ("crl", PCK_CRL, x509.load_der_x509_crl(PCK_CRL).next_update_utc),
        ("tcb_info", TCB_INFO, datetime.fromisoformat(json.loads(TCB_INFO)["tcbInfo"]["nextUpdate"])),
        ("qe_identity", QE_IDENTITY, datetime.fromisoformat(json.loads(QE_IDENTITY)["enclaveIdentity"]["nextUpdate"])),
        ("vcek", VCEK, None),
        ("jwks", b'{"keys": [{"kty": "EC"}]}', T0 + timedelta(hours=1)),
    ],
)
def test_type_registry_derives_expiry_from_real_collateral(kind: str, body: bytes, expected: datetime | None) -> None:
    kind_ = COLLATERAL_TYPES[kind]
    kind_.validate(body)
    assert kind_.expires(body, T0) == expected
    assert kind_.expires_from(T0)(body) == expected


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("crl", b"not a crl"),
        ("crl", VCEK),
        ("tcb_info", QE_IDENTITY),
        ("qe_identity", b"[]"),
        ("tcb_info", b'{"tcbInfo": {"nextUpdate": "soon"}}'),
        ("vcek", b"garbage"),
        ("jwks", b'{"keys": []}'),
    ],
)
def test_type_registry_rejects_wrong_bytes(kind: str, body: bytes) -> None:
    with pytest.raises(BrokerError) as info:
        COLLATERAL_TYPES[kind].validate(body)
    assert info.value.code.name == "COLLATERAL_INVALID"


def test_refresh_rewrites_mutable_objects_and_skips_immutable_and_untyped(
    s3: Any, bucket: str, replay: ReplayServer
) -> None:
    store = S3Store(bucket, client=s3)
    base = replay.base_url
    _seed(store, base + "/vcek/v1/Milan/crl", MILAN_CRL, "crl")
    _seed(store, base + "/tdx/certification/v4/tcb?fmspc=90C06F000000", TCB_INFO, "tcb_info")
    _seed(store, base + "/vcek/v1/Milan/abc", VCEK, "vcek")
    _seed(store, base + "/untyped", b"x", None)
    replay.add("/vcek/v1/Milan/crl", MILAN_CRL)
    replay.add("/tdx/certification/v4/tcb?fmspc=90C06F000000", TCB_INFO)

    report = refresh_store(store, HttpFetcher(), now=T1)

    assert sorted(report.refreshed) == sorted(
        [base + "/vcek/v1/Milan/crl", base + "/tdx/certification/v4/tcb?fmspc=90C06F000000"]
    )
    assert (report.skipped_immutable, report.skipped_untyped, report.failed) == (1, 1, {})
    assert sorted(replay.requests) == sorted(["/vcek/v1/Milan/crl", "/tdx/certification/v4/tcb?fmspc=90C06F000000"])
    crl = _stored(store, base + "/vcek/v1/Milan/crl")
    assert (crl.fetched_at, crl.collateral_type, crl.body) == (T1, "crl", MILAN_CRL)
    assert _stored(store, base + "/vcek/v1/Milan/abc").fetched_at == T0  # immutable: untouched

    # The refreshed object is what the next request's cache reads from S3 (no origin call).
    cache = CollateralCache(HttpFetcher(), store)
    got = cache.get(base + "/vcek/v1/Milan/crl", now=T1, expires=COLLATERAL_TYPES["crl"].expires_from(T1))
    assert got.source == "store" and got.fetched_at == T1
    assert len(replay.requests) == 2


def test_invalid_or_unavailable_origin_leaves_stored_copy(s3: Any, bucket: str, replay: ReplayServer) -> None:
    store = S3Store(bucket, client=s3)
    base = replay.base_url
    _seed(store, base + "/bad", MILAN_CRL, "crl")
    _seed(store, base + "/down", MILAN_CRL, "crl")
    _seed(store, base + "/gone", MILAN_CRL, "crl")
    replay.add("/bad", b"<html>maintenance</html>")
    replay.add("/down", b"", status=503)
    report = refresh_store(store, HttpFetcher(), now=T1)
    assert report.failed == {
        base + "/bad": "COLLATERAL_INVALID",
        base + "/down": "COLLATERAL_UNAVAILABLE",
        base + "/gone": "COLLATERAL_NOT_FOUND",
    }
    for path in ("/bad", "/down", "/gone"):
        assert _stored(store, base + path).body == MILAN_CRL and _stored(store, base + path).fetched_at == T0


def test_older_copy_from_origin_does_not_replace_newer_stored_copy(s3: Any, bucket: str, replay: ReplayServer) -> None:
    """Genoa's CRL expires 2025-11-03, Milan's 2026-05-12: serving the older one must not roll back."""
    store = S3Store(bucket, client=s3)
    url = replay.base_url + "/crl"
    _seed(store, url, MILAN_CRL, "crl")
    replay.add("/crl", GENOA_CRL)
    report = refresh_store(store, HttpFetcher(), now=T1)
    assert report.kept_newer == 1 and report.refreshed == []
    assert _stored(store, url).body == MILAN_CRL


def test_object_whose_key_does_not_match_its_url_is_ignored(s3: Any, bucket: str, replay: ReplayServer) -> None:
    """A stray object cannot steer the refresher to an arbitrary URL."""
    store = S3Store(bucket, client=s3)
    planted = CachedObject(replay.base_url + "/elsewhere", MILAN_CRL, T0, T1, "origin", collateral_type="crl")
    store.put("collateral/" + "0" * 64, planted.encode())
    store.put("collateral/" + "1" * 64, b"damaged")
    report = refresh_store(store, HttpFetcher(), now=T1)
    assert report.ignored == 2 and replay.requests == []


def test_deadline_defers_the_rest(s3: Any, bucket: str, replay: ReplayServer) -> None:
    store = S3Store(bucket, client=s3)
    for i in range(3):
        _seed(store, f"{replay.base_url}/crl{i}", MILAN_CRL, "crl")
        replay.add(f"/crl{i}", MILAN_CRL)
    ticks = iter([0.0, 1.0, 5.0, 9.0])
    report = refresh_store(store, HttpFetcher(), now=T1, deadline=2.0, clock=lambda: next(ticks))
    assert (len(report.refreshed), report.deferred) == (2, 1)


def test_concurrent_refreshers_are_harmless(s3: Any, bucket: str, replay: ReplayServer) -> None:
    store = S3Store(bucket, client=s3)
    urls = [f"{replay.base_url}/crl{i}" for i in range(4)]
    for i, url in enumerate(urls):
        _seed(store, url, MILAN_CRL, "crl")
        replay.add(f"/crl{i}", MILAN_CRL)
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(refresh_store(store, HttpFetcher(), now=T1))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.failed == {} and len(r.refreshed) == 4 for r in reports)
    for url in urls:
        obj = _stored(store, url)
        assert obj.body == MILAN_CRL and obj.fetched_at == T1 and obj.collateral_type == "crl"


def test_refresh_handler_reads_broker_cache(
    s3: Any, bucket: str, replay: ReplayServer, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    import functions.refresh as refresh_fn

    monkeypatch.setenv("BROKER_CACHE", f"s3:{bucket}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setattr(refresh_fn, "_state", None)
    store = S3Store(bucket, client=s3)
    url = replay.base_url + "/crl"
    _seed(store, url, MILAN_CRL, "crl")
    replay.add("/crl", MILAN_CRL)

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    summary = refresh_fn.handler({"source": "aws.events"}, Context())
    assert summary["refreshed"] == 1 and summary["failed"] == {}
    assert json.loads(out.getvalue())["event"] == "collateral_refresh"
    assert _stored(store, url).fetched_at > T1


def test_refresh_handler_requires_s3_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import functions.refresh as refresh_fn

    monkeypatch.setattr(refresh_fn, "_state", None)
    monkeypatch.setenv("BROKER_CACHE", "dir:/tmp/x")
    with pytest.raises(BrokerError) as info:
        refresh_fn.handler({}, None)
    assert info.value.code.name == "CONFIG_INVALID"
