"""TCB currency: the refresher records Intel TCB evaluation data numbers and AMD's newest TCB per product,
announces each change once (structured event + EMF metric), and keeps the history in the shared store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from attestation_broker.trust.cache import CachedObject, CollateralCache
from attestation_broker.trust.currency import CURRENCY_KEY, TcbCurrency, TcbCurrencyView
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.trust.refresh import refresh_store

from tests.support.replay import ReplayServer
from tests.support.vectors import vector
from tests.unit.tdx.support import c1_bodies

TCB_PATH = "/tdx/certification/v4/tcb?fmspc=90C06F000000"
T1 = datetime(2026, 1, 20, tzinfo=UTC)
T2 = datetime(2026, 2, 5, tzinfo=UTC)


class MemoryStore:
    """The shared-store contract (get/put/keys) on a dict: the S3 and directory stores are tested elsewhere."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.data[key] = data

    def keys(self, under: str = "") -> Iterator[str]:
        return iter([k for k in self.data if k.startswith(under)])


def _seed(store: MemoryStore, url: str, body: bytes, kind: str, expires: datetime | None) -> None:
    store.put(CollateralCache.key(url), CachedObject(url, body, T1, expires, "origin", collateral_type=kind).encode())


def test_refresher_records_and_announces_tcb_changes(replay: ReplayServer) -> None:
    store = MemoryStore()
    body = c1_bodies()["tcb_info"]
    url = replay.base_url + TCB_PATH
    _seed(store, url, body, "tcb_info", datetime(2026, 2, 11, tzinfo=UTC))
    vcek_url = replay.base_url + "/vcek/v1/Milan/abcd?blSPL=03"
    _seed(store, vcek_url, vector("snp/trustee-milan-v2/test-vcek.der"), "vcek", None)
    events: list[Mapping[str, Any]] = []
    replay.add(TCB_PATH, body)

    currency = TcbCurrency(store, emit=events.append)
    refresh_store(store, HttpFetcher(), now=T1, currency=currency)
    intel = currency.current("intel", "tdx:90C06F000000")
    assert intel is not None and intel.level == (18,) and intel.since == T1
    assert intel.published == datetime(2026, 1, 12, 15, 46, 45, tzinfo=UTC)
    amd = currency.current("amd", "Milan")
    assert amd is not None and amd.since == T1 and len(amd.level) == 5
    assert sorted((e["vendor"], e["previous"]) for e in events) == [("amd", None), ("intel", None)]

    # Intel publishes TCB evaluation data number 19 (a TCB recovery): one event, one metric.
    newer = body.replace(b'"tcbEvaluationDataNumber":18', b'"tcbEvaluationDataNumber":19', 1)
    newer = newer.replace(b'"nextUpdate":"2026-02-11T15:46:45Z"', b'"nextUpdate":"2026-03-11T15:46:45Z"', 1)
    assert newer != body
    replay.add(TCB_PATH, newer)
    events.clear()
    refresh_store(store, HttpFetcher(), now=T2, currency=currency)
    assert len(events) == 1
    event = events[0]
    assert event["event"] == "tcb_currency_changed" and event["scope"] == "tdx:90C06F000000"
    assert event["tcb_evaluation_data_number"] == [19] and event["previous"] == [18]
    assert event["TcbCurrencyChange"] == 1
    assert event["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "TcbCurrencyChange", "Unit": "Count"}]

    # The history is in the shared store: another instance (the policy engine's view) sees when 19 appeared.
    assert CURRENCY_KEY in store.data
    view: TcbCurrencyView = TcbCurrency(store, emit=events.append)
    seen = view.current("intel", "tdx:90C06F000000")
    assert seen is not None and seen.level == (19,) and seen.since == T2
    # Seeing the same level again is not a change.
    events.clear()
    refresh_store(store, HttpFetcher(), now=datetime(2026, 2, 6, tzinfo=UTC), currency=currency)
    assert events == []


def test_malformed_bodies_are_not_observations() -> None:
    currency = TcbCurrency(None, emit=lambda _e: None)
    assert currency.observe_intel_tcb_info(b"not json", T1) is None
    assert currency.observe_amd_vcek(b"\x30\x03\x02\x01\x00", T1) is None
    assert currency.all() == []
    store = MemoryStore()
    store.put(CURRENCY_KEY, b"{broken")
    assert TcbCurrency(store, emit=lambda _e: None).all() == []  # a damaged record restarts the history
