"""Scheduled Lambda (EventBridge ``rate(1 hour)``): refresh vendor collateral in the S3 shared store.

Thin by design: the logic is :func:`attestation_broker.trust.refresh.refresh_store`. Built once per cold start from
the environment (``BROKER_CACHE=s3:<bucket>[/<prefix>]``, ``BROKER_FETCH_TIMEOUT_SECONDS``,
``BROKER_OFFLINE``). Leaves a safety margin before the Lambda timeout; objects not reached are counted
as deferred and picked up by the next run.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from attestation_broker.config import Settings
from attestation_broker.errors import CONFIG_INVALID
from attestation_broker.trust.currency import TcbCurrency
from attestation_broker.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher
from attestation_broker.trust.refresh import ListableStore, refresh_store
from attestation_broker.trust.upstreams import build_fetcher

SAFETY_MARGIN_SECONDS = 10.0

_state: tuple[Settings, ListableStore, Fetcher] | None = None


def _build() -> tuple[Settings, ListableStore, Fetcher]:
    global _state
    if _state is None:
        settings = Settings.from_env()
        cache = settings.cache
        if not cache.startswith("s3:"):
            raise CONFIG_INVALID("the collateral refresher needs BROKER_CACHE=s3:<bucket>")
        from attestation_broker.aws.factory import store_from_uri

        fetcher: Fetcher = build_fetcher(settings, OfflineFetcher() if settings.offline else HttpFetcher())
        _state = (settings, store_from_uri(cache), fetcher)
    return _state


def handler(event: dict[str, Any], context: Any) -> dict[str, object]:
    settings, store, fetcher = _build()
    deadline = None
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        deadline = time.monotonic() + remaining() / 1000.0 - SAFETY_MARGIN_SECONDS
    report = refresh_store(
        store,
        fetcher,
        now=datetime.now(UTC),
        timeout=settings.fetch_timeout_seconds,
        deadline=deadline,
        currency=TcbCurrency(store),  # TCB changes: one structured event + EMF metric each (docs/collateral.md)
    )
    summary = report.as_dict()
    # One structured line for CloudWatch Logs / metric filters (no collateral bytes, URLs of failures only).
    print(json.dumps({"event": "collateral_refresh", **summary}, sort_keys=True), file=sys.stdout, flush=True)
    return summary
