"""TDX with ``revocation = skip`` (docs/evidence.md, "Revocation"): real quotes verify at their pinned time from
recorded TCB info + QE identity + issuer chains alone, the Intel PCK and root CRLs neither fetched nor required,
while every other check still runs; with the default ``check`` a missing CRL stays COLLATERAL_UNAVAILABLE."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import Appraisal
from attestation_broker.evidence.tdx import TdxCollateral, TdxResult, verify_tdx_evidence
from attestation_broker.evidence.tdx.collateral import DCAP_QVL_CRLS
from attestation_broker.evidence.tdx.kind import TdxVerifier
from attestation_broker.revocation import cap
from attestation_broker.verifier import VerifyContext

from tests.support.context import offline_context, replay_context
from tests.support.errors import code_of
from tests.support.replay import ReplayServer
from tests.unit.tdx.support import NOW_C1, NOW_D6, c1_bodies, dcap_json, flip, quote_bytes, serve

CRL_TARGETS = ("/sgx/certification/v4/pckcrl?ca=platform&encoding=der", "/sgx/certification/v4/rootcacrl")
JSON_TARGETS = ["/tdx/certification/v4/tcb?fmspc=90C06F000000", "/tdx/certification/v4/qe/identity"]


def without_crls(name: str = "D6") -> str:
    """The recorded dcap-qvl collateral with the CRLs (and the PCK CRL's issuer chain) taken out."""
    doc = json.loads(dcap_json(name))
    return json.dumps({k: v for k, v in doc.items() if k not in DCAP_QVL_CRLS})


def run(name: str, ctx: VerifyContext, collateral: TdxCollateral | None = None) -> TdxResult:
    return verify_tdx_evidence(quote_bytes(name), ctx, expected_report_data=None, collateral_override=collateral)


def serve_without_crls(replay: ReplayServer) -> None:
    serve(replay, "90c06f000000", c1_bodies())
    for target in CRL_TARGETS:  # the CRL origins are down: nothing recorded, nothing reachable
        replay.add(target, b"down", 503)


@pytest.mark.parametrize("name", ["D2", "D8"])
def test_fetched_collateral_without_crls(replay: ReplayServer, name: str) -> None:
    serve_without_crls(replay)
    assert code_of(run, name, replay_context(replay.base_url, NOW_C1)) == "COLLATERAL_UNAVAILABLE"

    replay.requests.clear()
    result = run(name, replay_context(replay.base_url, NOW_C1, revocation="skip"))
    assert result.tcb.status == "UpToDate"
    assert replay.requests == JSON_TARGETS  # the CRLs are not even asked for
    assert [r["type"] for r in result.verifier_claims["collateral"]] == ["tcb_info", "qe_identity"]
    assert result.verifier_claims["tcb_evaluation_data_number"] == 18


def test_recorded_dcap_collateral_without_crls() -> None:
    collateral = TdxCollateral.from_dcap_qvl_json(without_crls())
    assert (collateral.pck_crl, collateral.root_crl, collateral.pck_crl_issuer_chain) == (None, None, None)
    assert code_of(run, "D6", offline_context(NOW_D6), collateral) == "COLLATERAL_UNAVAILABLE"

    result = run("D6", offline_context(NOW_D6, revocation="skip"), collateral)
    assert result.tcb.status == "UpToDate"
    # Same grading and claims as with the CRLs checked: only the revocation step is left out.
    full = run("D6", offline_context(NOW_D6), TdxCollateral.from_dcap_qvl_json(dcap_json("D6")))
    assert result.trustworthiness_vector == full.trustworthiness_vector
    assert result.attester_claims == full.attester_claims
    assert [r["type"] for r in result.verifier_claims["collateral"]] == ["tcb_info", "qe_identity"]
    # Written back without the CRLs, read again the same.
    again = TdxCollateral.from_dcap_qvl_json(collateral.to_dcap_qvl_json())
    assert again.tcb_info == collateral.tcb_info and again.pck_crl is None


@pytest.mark.parametrize("crl", ["pck_crl", "root_ca_crl"])
def test_one_crl_missing_is_unavailable_under_check(crl: str) -> None:
    doc = json.loads(dcap_json("D6"))
    del doc[crl]
    collateral = TdxCollateral.from_dcap_qvl_json(json.dumps(doc))
    assert code_of(run, "D6", offline_context(NOW_D6), collateral) == "COLLATERAL_UNAVAILABLE"
    assert run("D6", offline_context(NOW_D6, revocation="skip"), collateral).tcb.status == "UpToDate"


def _hex_flip(text: str, at: int) -> str:
    return text[:at] + ("0" if text[at] != "0" else "1") + text[at + 1 :]


# Everything but revocation is still checked with skip: signed JSON, its signatures and issuer chains, the TCB
# evaluation inputs, and the quote itself.
SKIP_MUTATIONS: list[tuple[str, Callable[[dict[str, str]], None], str]] = [
    ("tcb_info", lambda d: d.update(tcb_info=d["tcb_info"].replace('"UpToDate"', '"OutOfDate"', 1)), "COLLATERAL_INVALID"),
    ("tcb_info_signature", lambda d: d.update(tcb_info_signature=_hex_flip(d["tcb_info_signature"], 5)), "COLLATERAL_INVALID"),
    ("qe_identity_signature", lambda d: d.update(qe_identity_signature=_hex_flip(d["qe_identity_signature"], 5)), "COLLATERAL_INVALID"),
    ("qe_identity", lambda d: d.update(qe_identity=d["qe_identity"].replace('"isvprodid":2', '"isvprodid":3')), "COLLATERAL_INVALID"),
    ("tcb_info_issuer_chain", lambda d: d.update(tcb_info_issuer_chain=""), "CERT_CHAIN_INVALID"),
]  # fmt: skip


@pytest.mark.parametrize(("field", "mutate", "code"), SKIP_MUTATIONS)
def test_skip_still_checks_the_signed_collateral(
    field: str, mutate: Callable[[dict[str, str]], None], code: str
) -> None:
    doc = json.loads(without_crls())
    before = doc[field]
    mutate(doc)
    assert doc[field] != before
    ctx = offline_context(NOW_D6, revocation="skip")
    assert code_of(lambda: run("D6", ctx, TdxCollateral.from_dcap_qvl_json(json.dumps(doc)))) == code


def test_skip_still_checks_the_quote_and_the_windows() -> None:
    collateral = TdxCollateral.from_dcap_qvl_json(without_crls())
    ctx = offline_context(NOW_D6, revocation="skip")
    quote = quote_bytes("D6")

    def verify(data: bytes, context: VerifyContext = ctx) -> TdxResult:
        return verify_tdx_evidence(data, context, expected_report_data=None, collateral_override=collateral)

    assert code_of(verify, flip(quote, 48 + 100)) == "TDX_QUOTE_SIGNATURE_INVALID"  # a TD report byte
    assert code_of(verify, quote, offline_context(datetime(2030, 1, 1, tzinfo=UTC), revocation="skip")) in {
        "COLLATERAL_EXPIRED",
        "CERT_EXPIRED",
    }


def test_broker_records_the_skip_and_caps_at_warning() -> None:
    """What ``Broker.attest`` does with a skip (``revocation.cap``) applied to the TDX appraisal."""
    result = run("D6", offline_context(NOW_D6, revocation="skip"), TdxCollateral.from_dcap_qvl_json(without_crls()))
    appraisal = cap(
        Appraisal(
            kind=TdxVerifier.kind,
            trustworthiness_vector=result.trustworthiness_vector,
            attester_claims=result.attester_claims,
            verifier_claims=result.verifier_claims,
            findings=result.findings,
        )
    )
    assert appraisal.verifier_claims["revocation"] == "skipped"
    assert appraisal.trustworthiness_vector["hardware"] == ar4si.HW_UNSAFE
