"""The VerifyContext builders every kind's tests use: offline (no collateral fetches) or against a loopback replay.

``offline_context`` never fetches (OfflineFetcher: collateral must come with the evidence or the refusal is
COLLATERAL_UNAVAILABLE); ``replay_context`` fetches over HTTP from a ``tests.support.replay`` server, so the real
client code runs. Extra keyword arguments are ``Settings`` fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from attestation_broker.config import Settings
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher
from attestation_broker.verifier import VerifyContext


def verify_context(
    now: datetime,
    *,
    fetcher: Fetcher | None = None,
    cache: CollateralCache | None = None,
    settings: Settings | None = None,
    **overrides: Any,
) -> VerifyContext:
    if settings is None:
        settings = Settings(**{"offline": fetcher is None and cache is None, **overrides})
    if cache is None:
        cache = CollateralCache(fetcher or OfflineFetcher(), timeout=2.0)
    return VerifyContext(now=now, collateral=cache, settings=settings)


def offline_context(now: datetime, **overrides: Any) -> VerifyContext:
    return verify_context(now, **overrides)


def http_context(now: datetime, **kwargs: Any) -> VerifyContext:
    """Fetches over HTTP (real client code); point the ``*_url`` settings at a loopback replay."""
    kwargs.setdefault("fetcher", HttpFetcher())
    return verify_context(now, **kwargs)


def replay_context(base_url: str, now: datetime, **overrides: Any) -> VerifyContext:
    """Collateral from the loopback replay at ``base_url`` (AMD KDS, Intel PCS and the Intel root CRL)."""
    overrides.setdefault("amd_kds_url", base_url)
    overrides.setdefault("intel_pcs_url", base_url)
    overrides.setdefault("intel_root_crl_url", f"{base_url}/sgx/certification/v4/rootcacrl")
    return http_context(now, **overrides)
