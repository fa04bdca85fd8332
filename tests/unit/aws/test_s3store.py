"""S3Store against moto S3 over HTTP, and the collateral cache tiers memory → S3 → origin (replay server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attestation_broker.aws.s3store import S3Store
from attestation_broker.errors import BrokerError
from attestation_broker.trust.cache import CachedObject, CollateralCache
from attestation_broker.trust.fetch import HttpFetcher

from tests.support.replay import ReplayServer
from tests.support.vectors import vector
from tests.unit.aws.conftest import client, unreachable_endpoint

NOW = datetime(2025, 6, 1, tzinfo=UTC)
MILAN_CRL = "roots/amd/amd_milan_vcek_crl.pem"


def test_round_trip_with_sse_and_prefix(s3: Any, bucket: str) -> None:
    store = S3Store(bucket, "broker/", client=s3)
    assert store.get("collateral/abc") is None
    store.put("collateral/abc", b"\x00bytes")
    assert store.get("collateral/abc") == b"\x00bytes"
    head = s3.head_object(Bucket=bucket, Key="broker/collateral/abc")
    assert head["ServerSideEncryption"] == "AES256"
    store.put("collateral/abc", b"replaced")  # same key: whole-object replacement
    assert store.get("collateral/abc") == b"replaced"
    store.put("collateral/def", b"2")
    assert sorted(store.keys("collateral/")) == ["collateral/abc", "collateral/def"]


def test_missing_bucket_and_unreachable_endpoint_raise_collateral_unavailable(s3: Any, aws_env: None) -> None:
    for store in (S3Store("no-such-bucket", client=s3), S3Store("b", client=client("s3", unreachable_endpoint()))):
        for call, args in ((store.get, ("k",)), (store.put, ("k", b"x")), (store.keys, ())):
            with pytest.raises(BrokerError) as info:
                result = call(*args)  # type: ignore[operator]
                list(result) if call == store.keys else None
            assert info.value.code.name == "COLLATERAL_UNAVAILABLE"


def _expires(body: bytes) -> datetime | None:
    from cryptography import x509

    return x509.load_pem_x509_crl(body).next_update_utc


def test_cache_tiers_memory_then_s3_then_origin(s3: Any, bucket: str, replay: ReplayServer) -> None:
    crl = vector(MILAN_CRL)
    replay.add("/vcek/v1/Milan/crl", crl)
    url = replay.base_url + "/vcek/v1/Milan/crl"
    store = S3Store(bucket, client=s3)

    first = CollateralCache(HttpFetcher(), store)
    got = first.get(url, now=NOW, expires=_expires, collateral_type="crl")
    assert (got.source, got.body) == ("origin", crl)
    assert first.get(url, now=NOW, expires=_expires).source == "memory"
    assert replay.requests == ["/vcek/v1/Milan/crl"]

    # The object in S3 is self-describing: URL, dates and type tag.
    stored = CachedObject.decode(s3.get_object(Bucket=bucket, Key=CollateralCache.key(url))["Body"].read(), "store")
    assert stored is not None and stored.url == url and stored.collateral_type == "crl"
    assert stored.expires_at == _expires(crl)

    # A second instance (another Lambda) gets it from S3 without touching the origin.
    second = CollateralCache(HttpFetcher(), store)
    got2 = second.get(url, now=NOW, expires=_expires)
    assert (got2.source, got2.body, got2.collateral_type) == ("store", crl, "crl")
    assert replay.requests == ["/vcek/v1/Milan/crl"]
    assert second.stats.store_hits == 1 and second.stats.origin_fetches == 0


def test_cache_survives_unreachable_s3(replay: ReplayServer, aws_env: None) -> None:
    replay.add("/crl", vector(MILAN_CRL))
    cache = CollateralCache(HttpFetcher(), S3Store("b", client=client("s3", unreachable_endpoint())))
    got = cache.get(replay.base_url + "/crl", now=NOW, expires=_expires)
    assert got.source == "origin"
    assert cache.stats.store_errors == 2  # the read miss and the write-through both failed, counted


def test_origin_down_serves_stale_copy_from_s3_within_grace(s3: Any, bucket: str, replay: ReplayServer) -> None:
    crl = vector(MILAN_CRL)
    replay.add("/crl", crl)
    url = replay.base_url + "/crl"
    store = S3Store(bucket, client=s3)
    CollateralCache(HttpFetcher(), store).get(url, now=NOW, expires=_expires)
    replay.add("/crl", b"down", status=503)
    next_update = _expires(crl)
    assert next_update is not None
    later = next_update + timedelta(hours=1)
    got = CollateralCache(HttpFetcher(), store).get(url, now=later, expires=_expires, stale_grace=timedelta(hours=2))
    assert got.stale and got.source == "store"
    with pytest.raises(BrokerError) as info:
        CollateralCache(HttpFetcher(), store).get(url, now=later, expires=_expires)
    assert info.value.code.name == "COLLATERAL_UNAVAILABLE"
