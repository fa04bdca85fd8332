"""Parity with the reference verifier dcap-qvl (PyPI) on every TDX vector that has collateral.

Both verifiers get the same quote, collateral and time; the broker must reach the same TCB status,
or fail where dcap-qvl fails ("No matching TCB level found" ↔ TDX_TCB_LEVEL_NOT_FOUND).

Deliberate differences (none changes a verdict on these vectors):
- When TEE_TCB_SVN[1] > 0 the broker, like Intel's QVL, compares TDX components 2..15 only (0..1 are
  judged by the TDX module identity); dcap-qvl compares all 16.
- The broker rejects a TCB info whose id is not "TDX" for a TDX quote, and checks the TCB Signing
  certificate's validity and root-CRL status on every use.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx import TdxCollateral, verify_tdx_evidence
from attestation_broker.evidence.tdx.pcs import split_signed

from tests.support.context import offline_context
from tests.support.vectors import vector
from tests.unit.tdx.support import C1, NOW_C1, NOW_D6, NOW_D7, c1_bodies, dcap_json, quote_bytes

dcap_qvl = pytest.importorskip("dcap_qvl")


def c1_dcap_json(fmspc: str = "90c06f000000") -> str:
    bodies = c1_bodies(fmspc)
    tcb = split_signed(bodies["tcb_info"], "tcbInfo")
    qe = split_signed(bodies["qe_identity"], "enclaveIdentity")

    def chain(name: str) -> str:
        return urllib.parse.unquote(vector(f"{C1}{name}").decode())

    return json.dumps(
        {
            "pck_crl_issuer_chain": chain("pck_crl_platform_chain.txt"),
            "root_ca_crl": bodies["root_crl"].hex(),
            "pck_crl": bodies["pck_crl"].hex(),
            "tcb_info_issuer_chain": chain(f"tcb_info_{fmspc}_chain.txt"),
            "tcb_info": tcb.signed.decode(),
            "tcb_info_signature": tcb.signature.hex(),
            "qe_identity_issuer_chain": chain("qe_identity_chain.txt"),
            "qe_identity": qe.signed.decode(),
            "qe_identity_signature": qe.signature.hex(),
        }
    )


CASES = [
    ("D6", "D6", NOW_D6),
    ("D6hex", "D6", NOW_D6),
    ("D7", "D7", NOW_D7),
    ("D2", "C1", NOW_C1),
    ("D8", "C1", NOW_C1),
    ("D7", "C1", NOW_C1),
]


def reference(quote: bytes, collateral_json: str, now: datetime) -> str:
    collateral = dcap_qvl.QuoteCollateralV3.from_json(collateral_json)
    try:
        return str(dcap_qvl.verify(quote, collateral, int(now.timestamp())).status)
    except Exception as exc:
        if "No matching TCB level" in str(exc):
            return "TDX_TCB_LEVEL_NOT_FOUND"
        raise


def broker(quote: bytes, collateral_json: str, now: datetime) -> str:
    try:
        result = verify_tdx_evidence(
            quote,
            offline_context(now),
            expected_report_data=None,
            collateral_override=TdxCollateral.from_dcap_qvl_json(collateral_json),
        )
    except BrokerError as exc:
        return exc.code.name
    return result.tcb.status


@pytest.mark.parametrize(("name", "col", "now"), CASES, ids=[f"{n}-{c}" for n, c, _ in CASES])
def test_same_status_as_dcap_qvl(name: str, col: str, now: datetime) -> None:
    collateral_json = dcap_json(col) if col != "C1" else c1_dcap_json()
    quote = quote_bytes(name)
    expected = reference(quote, collateral_json, now)
    assert broker(quote, collateral_json, now) == expected
    assert expected in ("UpToDate", "TDX_TCB_LEVEL_NOT_FOUND")


def test_both_reject_expired_collateral() -> None:
    quote, col = quote_bytes("D6"), dcap_json("D6")
    late = datetime.fromisoformat("2025-08-01T00:00:00+00:00")
    with pytest.raises(Exception):  # noqa: B017 - dcap-qvl raises a plain exception
        dcap_qvl.verify(quote, dcap_qvl.QuoteCollateralV3.from_json(col), int(late.timestamp()))
    assert broker(quote, col, late) == "COLLATERAL_EXPIRED"


def test_both_reject_wrong_fmspc() -> None:
    quote, col = quote_bytes("D8"), c1_dcap_json("00a06d080000")
    with pytest.raises(Exception):  # noqa: B017
        dcap_qvl.verify(quote, dcap_qvl.QuoteCollateralV3.from_json(col), int(NOW_C1.timestamp()))
    assert broker(quote, col, NOW_C1) == "TDX_FMSPC_MISMATCH"
