"""Intel issuer chains: only the root is pinned; the TCB Signing certificate travels with the collateral.

A test-only Intel-shaped PKI (tests/unit/tdx/support.py) rotates its TCB Signing certificate the way Intel
did in May 2025: collateral signed by the new certificate verifies through the chain stored with it, and
collateral signed by the previous certificate keeps verifying through its own stored chain.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx import TdxCollateral, TdxResult, verify_tdx_evidence
from attestation_broker.evidence.tdx.trust import INTEL_SGX_ROOT_CA_SHA256, intel_trust
from attestation_broker.trust.cache import CachedObject, CollateralCache, DirectoryStore
from attestation_broker.trust.fetch import HttpFetcher, OfflineFetcher
from attestation_broker.trust.roots import manifest
from attestation_broker.verifier import VerifyContext
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.context import offline_context, replay_context
from tests.support.replay import ReplayServer
from tests.unit.tdx.support import (
    NOW_C1,
    FakeIntelPki,
    c1_json,
    chain_header,
    quote_bytes,
    serve,
    shifted,
)


def _docs() -> tuple[dict[str, Any], dict[str, Any]]:
    return shifted(c1_json("tcb_info_90c06f000000.json"), NOW_C1), shifted(c1_json("qe_identity.json"), NOW_C1)


def _bodies(pki: FakeIntelPki) -> dict[str, bytes]:
    tcb, qe = _docs()
    return {
        "tcb_info": pki.sign_json("tcbInfo", tcb),
        "qe_identity": pki.sign_json("enclaveIdentity", qe),
        "pck_crl": pki.crl("ca"),
        "root_crl": pki.crl("root"),
    }


def _chains(pki: FakeIntelPki) -> dict[str, str]:
    return {
        "tcb_info": chain_header(pki.signing, pki.root),
        "qe_identity": chain_header(pki.signing, pki.root),
        "pck_crl": chain_header(pki.ca, pki.root),
    }


def _verify(quote: bytes, ctx: VerifyContext, pki: FakeIntelPki, col: TdxCollateral | None = None) -> TdxResult:
    return verify_tdx_evidence(quote, ctx, expected_report_data=None, collateral_override=col, trust=pki.trust)


def _code(fn: Any, *args: Any) -> str:
    with pytest.raises(BrokerError) as exc:
        fn(*args)
    return exc.value.code.name


def test_rotated_tcb_signing_certificate_verifies_through_the_stored_chain(
    replay: ReplayServer, tmp_path: Path
) -> None:
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    old_signer = pki.signing
    serve(replay, "90c06f000000", _bodies(pki), chains=_chains(pki))
    store = DirectoryStore(tmp_path)
    settings = replay_context(replay.base_url, NOW_C1).settings
    online = VerifyContext(now=NOW_C1, collateral=CollateralCache(HttpFetcher(), store), settings=settings)
    assert _verify(quote, online, pki).tcb.status == "UpToDate"

    # The chain is stored beside the body: a broker with no network verifies from the store alone.
    offline = VerifyContext(now=NOW_C1, collateral=CollateralCache(OfflineFetcher(), store), settings=settings)
    assert _verify(quote, offline, pki).tcb.status == "UpToDate"
    url = f"{replay.base_url}/tdx/certification/v4/tcb?fmspc=90C06F000000"
    stored = CachedObject.decode(store.get(CollateralCache.key(url)) or b"", "store")
    assert stored is not None and stored.issuer_chain is not None
    assert old_signer.public_bytes(Encoding.PEM) in stored.issuer_chain

    # Intel rotates the TCB Signing certificate; the origin serves re-signed collateral with the new chain.
    pki.rotate_signing()
    assert pki.signing.fingerprint(hashes.SHA256()) != old_signer.fingerprint(hashes.SHA256())
    serve(replay, "90c06f000000", _bodies(pki), chains=_chains(pki))
    fresh = VerifyContext(now=NOW_C1, collateral=CollateralCache(HttpFetcher()), settings=settings)
    result = _verify(quote, fresh, pki)
    assert result.tcb.status == "UpToDate"
    assert [c["source"] for c in result.verifier_claims["collateral"]] == ["origin"] * 4
    # Collateral signed by the previous certificate still verifies through its own stored chain.
    assert _verify(quote, offline, pki).tcb.status == "UpToDate"


def test_rotated_signer_without_its_chain_does_not_verify(replay: ReplayServer) -> None:
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    old_chain = _chains(pki)
    pki.rotate_signing()
    serve(replay, "90c06f000000", _bodies(pki), chains=old_chain)  # new signatures, previous chain
    assert _code(_verify, quote, replay_context(replay.base_url, NOW_C1), pki) == "COLLATERAL_INVALID"


def test_origin_without_issuer_chain_is_refused(replay: ReplayServer) -> None:
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    serve(replay, "90c06f000000", _bodies(pki), chains={})
    assert _code(_verify, quote, replay_context(replay.base_url, NOW_C1), pki) == "CERT_CHAIN_INVALID"


def test_stored_entry_without_chain_is_refetched(replay: ReplayServer, tmp_path: Path) -> None:
    """A store entry written before chains were kept (body only) is a miss, not a failure."""
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    bodies = _bodies(pki)
    serve(replay, "90c06f000000", bodies, chains=_chains(pki))
    store = DirectoryStore(tmp_path)
    url = f"{replay.base_url}/tdx/certification/v4/tcb?fmspc=90C06F000000"
    legacy = CachedObject(url, bodies["tcb_info"], NOW_C1, NOW_C1.replace(year=2027), "origin", "tcb_info")
    store.put(CollateralCache.key(url), legacy.encode())
    settings = replay_context(replay.base_url, NOW_C1).settings
    ctx = VerifyContext(now=NOW_C1, collateral=CollateralCache(HttpFetcher(), store), settings=settings)
    assert _verify(quote, ctx, pki).tcb.status == "UpToDate"
    assert "/tdx/certification/v4/tcb?fmspc=90C06F000000" in replay.requests


@pytest.mark.parametrize(
    "mutate",
    [
        lambda pki, other: b"",  # missing
        lambda pki, other: b"not pem",
        lambda pki, other: pki.root.public_bytes(Encoding.PEM),  # the root alone
        lambda pki, other: other.signing_chain,  # a signer under another root
        lambda pki, other: pki.signing.public_bytes(Encoding.PEM) + other.root.public_bytes(Encoding.PEM),
        lambda pki, other: pki.signing_chain + pki.ca.public_bytes(Encoding.PEM),  # three certificates
        lambda pki, other: pki.ca.public_bytes(Encoding.PEM) + pki.root.public_bytes(Encoding.PEM),  # a CA signs
    ],
)
def test_bad_tcb_signing_chains(mutate: Any) -> None:
    pki, other = FakeIntelPki.create(), FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    tcb, qe = _docs()
    col = replace(pki.collateral(tcb, qe), tcb_info_issuer_chain=mutate(pki, other))
    assert _code(_verify, quote, offline_context(NOW_C1), pki, col) in {"CERT_CHAIN_INVALID", "COLLATERAL_INVALID"}


def test_revoked_tcb_signing_certificate(replay: ReplayServer) -> None:
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    tcb, qe = _docs()
    col = pki.collateral(tcb, qe, root_revoked=(pki.signing.serial_number,))
    assert _code(_verify, quote, offline_context(NOW_C1), pki, col) == "CERT_REVOKED"


def test_only_roots_are_pinned() -> None:
    assert set(manifest("intel")) == {"trusted_root.pem"}
    root = intel_trust().root
    assert root.fingerprint(hashes.SHA256()).hex() == INTEL_SGX_ROOT_CA_SHA256
    assert manifest("intel")["trusted_root.pem"]["fingerprint_sha256"] == INTEL_SGX_ROOT_CA_SHA256
    assert not hasattr(intel_trust(), "tcb_signing")


def test_real_collateral_chain_header_is_url_decoded(replay: ReplayServer) -> None:
    """The recorded Intel PCS header (URL-encoded PEM) verifies the real TDX-C1 collateral."""
    from tests.unit.tdx.support import c1_bodies, c1_chains

    serve(replay, "90c06f000000", c1_bodies(), chains=c1_chains())
    result = verify_tdx_evidence(quote_bytes("D8"), replay_context(replay.base_url, NOW_C1), expected_report_data=None)
    assert result.tcb.status == "UpToDate"
    assert urllib.parse.unquote(c1_chains()["tcb_info"]).startswith("-----BEGIN CERTIFICATE-----")
