"""End-to-end verification of the real TDX vectors, and mutations of every signed region."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.evidence.tdx import TdxCollateral, TdxResult, parse_quote, verify_tdx_evidence
from attestation_broker.evidence.tdx.checks import verify_quote_signatures
from attestation_broker.evidence.tdx.pck import _chains, verify_pck_chain
from attestation_broker.evidence.tdx.trust import intel_trust

from tests.support.context import offline_context
from tests.support.errors import code_of
from tests.unit.tdx.support import (
    NOW_C1,
    NOW_D6,
    NOW_D7,
    c1_collateral,
    dcap_collateral,
    dcap_json,
    flip,
    quote_bytes,
)


def run(
    name: str | bytes,
    collateral: TdxCollateral,
    now: datetime,
    *,
    report_data: bytes | None = None,
) -> TdxResult:
    data = quote_bytes(name) if isinstance(name, str) else name
    return verify_tdx_evidence(
        data,
        offline_context(now),
        expected_report_data=report_data,
        collateral_override=collateral,
    )


# --- positives -----------------------------------------------------------------------------------

POSITIVE = [
    # name, collateral, now, status, module identity, tcb date
    ("D6", "D6", NOW_D6, "UpToDate", "TDX_01", "2024-03-13T00:00:00Z"),
    ("D2", "C1", NOW_C1, "UpToDate", "TDX_01", "2024-11-13T00:00:00Z"),
    ("D8", "C1", NOW_C1, "UpToDate", "TDX_01", "2024-11-13T00:00:00Z"),
]


@pytest.mark.parametrize(("name", "col", "now", "status", "module", "date"), POSITIVE)
def test_real_vectors_verify(name: str, col: str, now: datetime, status: str, module: str, date: str) -> None:
    collateral = dcap_collateral(col) if col != "C1" else c1_collateral()
    result = run(name, collateral, now)
    q = parse_quote(quote_bytes(name))
    claims = result.attester_claims
    assert result.tcb.status == status and result.tcb.module_identity == module
    assert claims["tee"] == "tdx" and claims["measurement"] == q.body.mr_td.hex()
    assert claims["tcb"]["status"] == status and claims["tcb"]["date"] == date
    assert claims["tcb"]["advisory_ids"] == []
    assert claims["report_data"] == q.body.report_data.hex()
    assert claims["dbgstat"] == "disabled"
    tdx = claims["tdx"]
    assert tdx["rtmrs"] == [r.hex() for r in q.body.rtmrs] and len(tdx["rtmrs"]) == 4
    assert tdx["mrseam"] == q.body.mr_seam.hex() and tdx["xfam"] == q.body.xfam.hex()
    assert tdx["attributes"]["sept_ve_disable"] is True and tdx["attributes"]["debug"] is False
    assert tdx["fmspc"] == result.tcb.fmspc
    assert ("tee_tcb_svn2" in tdx) == (q.version == 5)
    assert result.trustworthiness_vector == {
        "hardware": ar4si.HW_GENUINE,
        "configuration": ar4si.CONFIG_APPROVED,
        "executables": ar4si.EXEC_UNRECOGNIZED,
        "runtime-opaque": ar4si.RUNTIME_ENCRYPTED,
    }
    vc = result.verifier_claims
    assert vc["evidence_kind"] == "tdx" and vc["bindings"] == {"nonce": "not-requested"} and vc["stale"] is False
    assert {c["type"] for c in vc["collateral"]} == {"tcb_info", "qe_identity", "pck_crl", "root_crl"}
    assert all(c["source"] == "evidence" for c in vc["collateral"])


@pytest.mark.parametrize(("name", "col", "now"), [("D6hex", "D6", NOW_D6), ("D7", "D7", NOW_D7), ("D7", "C1", NOW_C1)])
def test_no_matching_tcb_level(name: str, col: str, now: datetime) -> None:
    collateral = dcap_collateral(col) if col != "C1" else c1_collateral()
    assert code_of(run, name, collateral, now) == "TDX_TCB_LEVEL_NOT_FOUND"


@pytest.mark.parametrize("name", ["D1", "D3", "D4", "D5"])
def test_quote_signatures_of_vectors_without_usable_collateral(name: str) -> None:
    # No (or no currently verifiable) collateral for these FMSPCs: check the quote-level DCAP steps.
    q = parse_quote(quote_bytes(name))
    chain = verify_pck_chain(q.pck_chain_pem, intel_trust(), datetime(2026, 11, 22, tzinfo=UTC))
    verify_quote_signatures(q, chain)
    assert chain.ca == "platform"


def test_report_data_binding() -> None:
    q = parse_quote(quote_bytes("D8"))
    ok = run("D8", c1_collateral(), NOW_C1, report_data=q.body.report_data)
    assert ok.verifier_claims["bindings"] == {"nonce": "checked"}
    assert (
        code_of(run, "D8", c1_collateral(), NOW_C1, report_data=flip(q.body.report_data, 63))
        == "NONCE_BINDING_MISMATCH"
    )
    assert code_of(run, "D8", c1_collateral(), NOW_C1, report_data=q.body.report_data[:32]) == "NONCE_BINDING_MISMATCH"


# --- mutations of the quote's signed regions -------------------------------------------------------

SIG = 632 + 4  # start of the signature data in a v4 quote
QUOTE_MUTATIONS = [
    ("header user data", 30, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("TEE_TCB_SVN", 48 + 2, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("TD attributes", 48 + 120, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("MRTD", 48 + 136, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("RTMR3", 48 + 472, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("REPORTDATA", 48 + 583, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("quote signature r", SIG + 5, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("quote signature s", SIG + 40, "TDX_QUOTE_SIGNATURE_INVALID"),
    ("attestation key", SIG + 64 + 10, "TDX_QE_REPORT_DATA_MISMATCH"),
    ("QE report MRENCLAVE", SIG + 134 + 64, "TDX_QE_REPORT_SIGNATURE_INVALID"),
    ("QE report ISVSVN", SIG + 134 + 258, "TDX_QE_REPORT_SIGNATURE_INVALID"),
    ("QE report data", SIG + 134 + 330, "TDX_QE_REPORT_SIGNATURE_INVALID"),
    ("QE report signature", SIG + 134 + 384 + 3, "TDX_QE_REPORT_SIGNATURE_INVALID"),
    ("QE auth data", SIG + 134 + 384 + 64 + 2 + 1, "TDX_QE_REPORT_DATA_MISMATCH"),
    ("PCK leaf signature region", SIG + 134 + 384 + 64 + 2 + 32 + 6 + 200, "CERT_CHAIN_INVALID"),
]


@pytest.mark.parametrize(("what", "offset", "code"), QUOTE_MUTATIONS, ids=[m[0] for m in QUOTE_MUTATIONS])
def test_quote_mutations(what: str, offset: int, code: str) -> None:
    data = flip(quote_bytes("D8"), offset, 0x04)
    got = code_of(run, data, c1_collateral(), NOW_C1)
    if what.startswith("PCK"):
        assert got in ("CERT_CHAIN_INVALID", "TDX_CERT_DATA_INVALID")
    else:
        assert got == code


def test_v5_body_mutation() -> None:
    data = flip(quote_bytes("D2"), 54 + 600)  # MRSERVICETD (TD 1.5 only)
    assert code_of(run, data, c1_collateral(), NOW_C1) == "TDX_QUOTE_SIGNATURE_INVALID"


def test_swapped_pck_chain() -> None:
    # Another platform's genuine PCK chain cannot vouch for this QE report.
    d8 = parse_quote(quote_bytes("D8"))
    d6 = parse_quote(quote_bytes("D6"))
    data = quote_bytes("D8").replace(d8.pck_chain_pem, d6.pck_chain_pem)
    assert len(data) == len(quote_bytes("D8"))
    assert code_of(run, data, c1_collateral(), NOW_C1) == "TDX_QE_REPORT_SIGNATURE_INVALID"


# --- collateral mutations ---------------------------------------------------------------------------


def _swap(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


def _flip_hex(text: str, index: int) -> str:
    return text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1 :]


# Mutations of the dcap-qvl document (the pairs as they travel): every one must fail, at intake or verification.
COLLATERAL_MUTATIONS = [
    ("tcb_info", lambda t: _swap(t, '"tcbEvaluationDataNumber":17', '"tcbEvaluationDataNumber":18')),
    ("tcb_info_signature", lambda t: "00" + t[:-2]),
    ("qe_identity", lambda t: _swap(t, '"isvprodid":2', '"isvprodid":3')),
    ("qe_identity_signature", lambda t: _flip_hex(t, len(t) - 3)),
    ("pck_crl", lambda t: _flip_hex(t, len(t) - 40)),
    ("pck_crl", lambda t: _flip_hex(t, 400)),
    ("root_crl", lambda t: _flip_hex(t, len(t) - 40)),
    ("tcb_info", lambda t: "not json"),
    ("tcb_info", lambda t: t + " "),  # one byte outside what Intel signed
]


@pytest.mark.parametrize(("field", "mutate"), COLLATERAL_MUTATIONS)
def test_collateral_mutations(field: str, mutate: Callable[[str], str]) -> None:
    doc = json.loads(dcap_json("D6"))
    name = "root_ca_crl" if field == "root_crl" else field
    doc[name] = mutate(doc[name])

    def verify_mutant() -> object:
        return run("D6", TdxCollateral.from_dcap_qvl_json(json.dumps(doc)), NOW_D6)

    assert code_of(verify_mutant) == "COLLATERAL_INVALID"


def test_wrong_fmspc_collateral() -> None:
    assert code_of(run, "D8", c1_collateral("00a06d080000"), NOW_C1) == "TDX_FMSPC_MISMATCH"


def test_collateral_swapped_crls() -> None:
    col = c1_collateral()
    assert code_of(run, "D8", replace(col, pck_crl=col.root_crl), NOW_C1) == "COLLATERAL_INVALID"
    assert code_of(run, "D8", replace(col, root_crl=col.pck_crl), NOW_C1) == "COLLATERAL_INVALID"


@pytest.mark.parametrize(
    ("now", "code"),
    [
        (datetime(2026, 2, 11, 16, 0, tzinfo=UTC), "COLLATERAL_EXPIRED"),  # PCK CRL / TCB info past nextUpdate
        (datetime(2026, 5, 1, tzinfo=UTC), "COLLATERAL_EXPIRED"),  # root CRL past nextUpdate too
        (datetime(2026, 1, 12, 12, 0, tzinfo=UTC), "COLLATERAL_INVALID"),  # PCK CRL issued in the future
    ],
)
def test_collateral_time_windows(now: datetime, code: str) -> None:
    assert code_of(run, "D8", c1_collateral(), now) == code


def test_expired_dcap_collateral() -> None:
    assert code_of(run, "D6", dcap_collateral("D6"), datetime(2025, 7, 20, tzinfo=UTC)) == "COLLATERAL_EXPIRED"
    assert code_of(run, "D6", dcap_collateral("D6"), datetime(2025, 6, 1, tzinfo=UTC)) == "COLLATERAL_INVALID"


def test_issuer_chain_with_foreign_root_is_rejected() -> None:
    col = dcap_collateral("D6")
    bad_chain = (col.tcb_info_issuer_chain or b"").replace(b"MIIC", b"MIID", 1)
    assert code_of(run, "D6", replace(col, tcb_info_issuer_chain=bad_chain), NOW_D6) == "CERT_CHAIN_INVALID"


def test_pck_leaf_expired() -> None:
    # D8's PCK leaf is valid from 2025-03-07: verifying before that is CERT_EXPIRED, whatever the collateral.
    assert code_of(run, "D8", c1_collateral(), datetime(2025, 3, 1, tzinfo=UTC)) == "CERT_EXPIRED"


def test_pck_chain_memo_rechecks_validity_and_is_keyed_by_bytes() -> None:
    pem = parse_quote(quote_bytes("D8")).pck_chain_pem
    trust = intel_trust()
    verify_pck_chain(pem, trust, NOW_C1)
    hits = _chains.hits
    # Served from the memo, yet judged at this call's time: before the leaf's notBefore it is CERT_EXPIRED.
    assert code_of(verify_pck_chain, pem, trust, datetime(2025, 3, 1, tzinfo=UTC)) == "CERT_EXPIRED"
    assert _chains.hits == hits + 1
    # One changed character in the leaf's signature is a different key: verified again, and refused.
    end = pem.index(b"\n-----END CERTIFICATE-----")
    spot = end - 20
    tampered = pem[:spot] + (b"B" if pem[spot : spot + 1] == b"A" else b"A") + pem[spot + 1 :]
    assert code_of(verify_pck_chain, tampered, trust, NOW_C1) == "CERT_CHAIN_INVALID"


def test_memoized_result_is_stable() -> None:
    first = run("D6", dcap_collateral("D6"), NOW_D6)
    second = run("D6", dcap_collateral("D6"), NOW_D6)
    assert first.attester_claims == second.attester_claims
    # Time windows are still checked on the memoized path.
    assert code_of(run, "D6", dcap_collateral("D6"), datetime(2025, 8, 1, tzinfo=UTC)) == "COLLATERAL_EXPIRED"
