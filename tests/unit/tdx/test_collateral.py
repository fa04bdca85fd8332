"""Collateral fetched from a replayed Intel PCS (loopback): URLs, caching, stale-if-error, outages."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.config import Settings
from attestation_broker.evidence.tdx import TdxResult, verify_tdx_evidence
from attestation_broker.evidence.tdx.collateral import collateral_urls
from attestation_broker.trust.cache import CachedObject, CollateralCache, DirectoryStore
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.trust.refresh import COLLATERAL_TYPES
from attestation_broker.verifier import VerifyContext

from tests.support.context import offline_context, replay_context
from tests.support.errors import code_of
from tests.support.replay import ReplayServer
from tests.unit.tdx.support import NOW_C1, c1_bodies, dcap_json, flip, quote_bytes, serve


def verify(name: str, ctx: VerifyContext) -> TdxResult:
    return verify_tdx_evidence(quote_bytes(name), ctx, expected_report_data=None)


EXPECTED_TARGETS = [
    "/tdx/certification/v4/tcb?fmspc=90C06F000000",
    "/tdx/certification/v4/qe/identity",
    "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
    "/sgx/certification/v4/rootcacrl",
]


@pytest.mark.parametrize("name", ["D2", "D8"])
def test_fetch_from_replayed_pcs(replay: ReplayServer, name: str) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    ctx = replay_context(replay.base_url, NOW_C1)
    result = verify(name, ctx)
    assert result.tcb.status == "UpToDate"
    assert replay.requests == EXPECTED_TARGETS
    records = result.verifier_claims["collateral"]
    assert [r["source"] for r in records] == ["origin"] * 4
    assert records[0] == {
        "type": "tcb_info",
        "url": f"{replay.base_url}/tdx/certification/v4/tcb?fmspc=90C06F000000",
        "issued": "2026-01-12T15:46:45Z",
        "next_update": "2026-02-11T15:46:45Z",
        "source": "origin",
        "stale": False,
    }
    # Second use: served from memory, re-verified (memoized by bytes), no new request.
    again = verify(name, ctx)
    assert [r["source"] for r in again.verifier_claims["collateral"]] == ["memory"] * 4
    assert len(replay.requests) == 4


def test_two_fmspcs_share_identity_and_crls(replay: ReplayServer) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    ctx = replay_context(replay.base_url, NOW_C1)
    verify("D8", ctx)
    verify("D2", ctx)  # same FMSPC: everything cached
    assert len(replay.requests) == 4


def test_dcap_collateral_through_pcs(replay: ReplayServer) -> None:
    doc = json.loads(dcap_json("D6"))
    serve(
        replay,
        "b0c06f000000",
        {
            "tcb_info": (
                '{"tcbInfo":' + doc["tcb_info"] + ',"signature":"' + doc["tcb_info_signature"] + '"}'
            ).encode(),
            "qe_identity": (
                '{"enclaveIdentity":' + doc["qe_identity"] + ',"signature":"' + doc["qe_identity_signature"] + '"}'
            ).encode(),
            "pck_crl": bytes.fromhex(doc["pck_crl"]),
            "root_crl": doc["root_ca_crl"].encode(),  # hex, as a PCCS serves it
        },
        chains={k: urllib.parse.quote(doc[f"{k}_issuer_chain"]) for k in ("tcb_info", "qe_identity", "pck_crl")},
    )
    result = verify("D6", replay_context(replay.base_url, datetime(2025, 7, 1, tzinfo=UTC)))
    assert result.tcb.status == "UpToDate"


def test_stale_if_error_within_grace(replay: ReplayServer) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    ctx = replay_context(replay.base_url, NOW_C1, collateral_stale_grace_seconds=3 * 86400)
    verify("D8", ctx)
    for target in EXPECTED_TARGETS:
        replay.add(target, b"busy", 503)
    later = VerifyContext(now=datetime(2026, 2, 12, tzinfo=UTC), collateral=ctx.collateral, settings=ctx.settings)
    result = verify("D8", later)
    vc = result.verifier_claims
    assert vc["stale"] is True
    assert {r["type"]: r["stale"] for r in vc["collateral"]} == {
        "tcb_info": True,
        "qe_identity": True,
        "pck_crl": True,
        "root_crl": False,  # still inside its own window
    }
    assert result.trustworthiness_vector["hardware"] == ar4si.HW_UNSAFE
    assert any("stale" in f for f in result.findings)
    # Past nextUpdate + grace: an outage is an outage.
    too_late = VerifyContext(now=datetime(2026, 2, 15, tzinfo=UTC), collateral=ctx.collateral, settings=ctx.settings)
    assert code_of(verify, "D8", too_late) == "COLLATERAL_UNAVAILABLE"


def test_no_stale_without_grace(replay: ReplayServer) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    ctx = replay_context(replay.base_url, NOW_C1)
    verify("D8", ctx)
    for target in EXPECTED_TARGETS:
        replay.add(target, b"busy", 503)
    later = VerifyContext(now=NOW_C1 + timedelta(days=11), collateral=ctx.collateral, settings=ctx.settings)
    assert code_of(verify, "D8", later) == "COLLATERAL_UNAVAILABLE"


def test_outage_and_not_found(replay: ReplayServer) -> None:
    bodies = c1_bodies()
    serve(replay, "90c06f000000", bodies)
    replay.add("/tdx/certification/v4/qe/identity", b"down", 503)
    assert code_of(verify, "D8", replay_context(replay.base_url, NOW_C1)) == "COLLATERAL_UNAVAILABLE"
    replay.routes.pop("/tdx/certification/v4/qe/identity")
    assert code_of(verify, "D8", replay_context(replay.base_url, NOW_C1)) == "COLLATERAL_NOT_FOUND"


def test_unknown_fmspc_is_not_found(replay: ReplayServer) -> None:
    serve(replay, "00a06d080000", c1_bodies("00a06d080000"))  # wrong FMSPC served under its own URL only
    assert code_of(verify, "D8", replay_context(replay.base_url, NOW_C1)) == "COLLATERAL_NOT_FOUND"


def test_wrong_fmspc_body_from_origin(replay: ReplayServer) -> None:
    bodies = c1_bodies()
    bodies["tcb_info"] = c1_bodies("00a06d080000")["tcb_info"]
    serve(replay, "90c06f000000", bodies)
    assert code_of(verify, "D8", replay_context(replay.base_url, NOW_C1)) == "TDX_FMSPC_MISMATCH"


def test_tampered_origin_body_is_not_cached(replay: ReplayServer) -> None:
    bodies = c1_bodies()
    good = bodies["tcb_info"]
    bodies["tcb_info"] = good.replace(b'"UpToDate"', b'"OutOfDate"', 1)
    serve(replay, "90c06f000000", bodies)
    ctx = replay_context(replay.base_url, NOW_C1)
    assert code_of(verify, "D8", ctx) == "COLLATERAL_INVALID"
    serve(replay, "90c06f000000", {**bodies, "tcb_info": good})
    assert verify("D8", ctx).tcb.status == "UpToDate"
    tcb_fetches = [r for r in replay.requests if r.startswith("/tdx/certification/v4/tcb")]
    assert len(tcb_fetches) == 2


def test_tampered_crl_from_origin(replay: ReplayServer) -> None:
    bodies = c1_bodies()
    bodies["pck_crl"] = flip(bodies["pck_crl"], len(bodies["pck_crl"]) - 10)
    serve(replay, "90c06f000000", bodies)
    assert code_of(verify, "D8", replay_context(replay.base_url, NOW_C1)) == "COLLATERAL_INVALID"


def test_offline_mode() -> None:

    assert code_of(verify, "D8", offline_context(NOW_C1)) == "COLLATERAL_UNAVAILABLE"


def test_url_building() -> None:
    settings = Settings()
    urls = collateral_urls(
        settings.intel_pcs_url, bytes.fromhex("90c06f000000"), "processor", root_crl_url=settings.intel_root_crl_url
    )
    assert urls.tcb_info == "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=90C06F000000"
    assert urls.qe_identity == "https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity"
    assert urls.pck_crl == "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der"
    assert urls.root_crl == "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
    pccs_root_crl = "https://pccs.example/sgx/certification/v4/rootcacrl"
    pccs = collateral_urls("https://pccs.example/", bytes(6), "platform", root_crl_url=pccs_root_crl)
    assert pccs.tcb_info == "https://pccs.example/tdx/certification/v4/tcb?fmspc=000000000000"
    assert pccs.root_crl == pccs_root_crl


def test_stored_collateral_is_tagged_for_the_refresher(replay: ReplayServer, tmp_path: Path) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    base = replay_context(replay.base_url, NOW_C1)
    store = DirectoryStore(tmp_path)
    ctx = VerifyContext(now=NOW_C1, collateral=CollateralCache(HttpFetcher(), store=store), settings=base.settings)
    records = verify("D8", ctx).verifier_claims["collateral"]
    tags = {}
    for record in records:
        stored = CachedObject.decode(store.get(CollateralCache.key(record["url"])) or b"", "store")
        assert stored is not None
        tags[record["type"]] = stored.collateral_type
    assert tags == {"tcb_info": "tcb_info", "qe_identity": "qe_identity", "pck_crl": "crl", "root_crl": "crl"}
    assert set(tags.values()) <= set(COLLATERAL_TYPES)
