"""TCB evaluation, revocation and TCB-info kind checks, with a generated test-only PKI.

The generated root is injected through ``verify_tdx_evidence(trust=...)``; real quotes are rebuilt
with fresh keys (same body unless patched) so statuses, CRLs and identities can be varied freely.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx import TdxCollateral, TdxResult, verify_tdx_evidence
from attestation_broker.evidence.tdx.abi import parse_quote
from attestation_broker.evidence.tdx.pck import parse_sgx_extensions
from attestation_broker.evidence.tdx.pcs import parse_qe_identity, parse_tcb_info
from attestation_broker.evidence.tdx.tcb import evaluate_tcb
from cryptography import x509

from tests.support.context import offline_context
from tests.support.errors import code_of
from tests.support.vectors import vector
from tests.unit.tdx.support import NOW_C1, FakeIntelPki, c1_json, quote_bytes, shifted


@pytest.fixture(scope="module")
def pki() -> FakeIntelPki:
    return FakeIntelPki.create()


def tcb_info(**changes: Any) -> dict[str, Any]:
    doc = shifted(c1_json("tcb_info_90c06f000000.json"), NOW_C1)
    doc.update(changes)
    return doc


def qe_identity(**changes: Any) -> dict[str, Any]:
    doc = shifted(c1_json("qe_identity.json"), NOW_C1)
    doc.update(changes)
    return doc


def verify(
    pki: FakeIntelPki,
    quote: bytes,
    collateral: TdxCollateral,
    *,
    now: datetime = NOW_C1,
) -> TdxResult:
    return verify_tdx_evidence(
        quote,
        offline_context(now),
        expected_report_data=None,
        collateral_override=collateral,
        trust=pki.trust,
    )


def test_forged_quote_verifies_only_under_the_test_root(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"))
    result = verify(pki, quote, pki.collateral(tcb_info(), qe_identity()))
    assert result.tcb.status == "UpToDate"
    # The product's pinned Intel root never accepts the test chain.
    with pytest.raises(BrokerError) as exc:
        verify_tdx_evidence(
            quote,
            offline_context(NOW_C1),
            expected_report_data=None,
            collateral_override=pki.collateral(tcb_info(), qe_identity()),
        )
    assert exc.value.code.name == "CERT_CHAIN_INVALID"


def test_revoked_pck(pki: FakeIntelPki) -> None:
    leaf = pki.leaf(bytes.fromhex("90c06f000000"), (3, 3, 2, 2, 4, 1, 0, 5) + (0,) * 8, 13)
    quote = pki.forge(quote_bytes("D8"), leaf=leaf)
    ok = pki.collateral(tcb_info(), qe_identity(), pck_revoked=(leaf[1].serial_number + 1,))
    assert verify(pki, quote, ok).tcb.status == "UpToDate"
    revoked = pki.collateral(tcb_info(), qe_identity(), pck_revoked=(leaf[1].serial_number,))
    assert code_of(verify, pki, quote, revoked) == "CERT_REVOKED"


def test_revoked_pck_ca_and_tcb_signer(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"))
    ca_revoked = pki.collateral(tcb_info(), qe_identity(), root_revoked=(pki.ca.serial_number,))
    assert code_of(verify, pki, quote, ca_revoked) == "CERT_REVOKED"
    signer_revoked = pki.collateral(tcb_info(), qe_identity(), root_revoked=(pki.signing.serial_number,))
    assert code_of(verify, pki, quote, signer_revoked) == "CERT_REVOKED"


def test_pck_leaf_outside_validity(pki: FakeIntelPki) -> None:
    leaf = pki.leaf(
        bytes.fromhex("90c06f000000"), (3, 3, 2, 2, 4, 1, 0, 5) + (0,) * 8, 13, not_after=NOW_C1 - timedelta(days=1)
    )
    quote = pki.forge(quote_bytes("D8"), leaf=leaf)
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "CERT_EXPIRED"


def test_sgx_tcb_info_for_a_tdx_quote(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"))
    sgx = tcb_info(id="SGX")
    for level in sgx["tcbLevels"]:
        level["tcb"] = {k: v for k, v in level["tcb"].items() if k != "tdxtcbcomponents"}
    sgx.pop("tdxModule")
    sgx.pop("tdxModuleIdentities")
    assert code_of(verify, pki, quote, pki.collateral(sgx, qe_identity())) == "TDX_TCB_INFO_NOT_TDX"
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(version=2), qe_identity())) == "TDX_TCB_INFO_NOT_TDX"


def test_sgx_qe_identity_for_a_tdx_quote(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"))
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity(id="QE"))) == "TDX_QE_IDENTITY_MISMATCH"


def test_future_and_expired_collateral(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"))
    future = pki.collateral(shifted(tcb_info(), NOW_C1, issued_days=2), qe_identity())
    assert code_of(verify, pki, quote, future) == "COLLATERAL_INVALID"
    expired = pki.collateral(tcb_info(), shifted(qe_identity(), NOW_C1, issued_days=-40, next_days=-1))
    assert code_of(verify, pki, quote, expired) == "COLLATERAL_EXPIRED"


def _single_level(status: str, advisories: list[str] | None = None, **tcb_overrides: Any) -> dict[str, Any]:
    doc = tcb_info()
    level = copy.deepcopy(doc["tcbLevels"][0])
    level["tcbStatus"] = status
    if advisories:
        level["advisoryIDs"] = advisories
    level["tcb"].update(tcb_overrides)
    doc["tcbLevels"] = [level]
    return doc


STATUS_TABLE = [
    ("UpToDate", ar4si.HW_GENUINE, ar4si.CONFIG_APPROVED),
    ("SWHardeningNeeded", ar4si.HW_GENUINE, ar4si.CONFIG_UNSAFE),
    ("ConfigurationNeeded", ar4si.HW_GENUINE, ar4si.CONFIG_UNSAFE),
    ("ConfigurationAndSWHardeningNeeded", ar4si.HW_GENUINE, ar4si.CONFIG_UNSAFE),
    ("OutOfDate", ar4si.HW_UNSAFE, ar4si.CONFIG_APPROVED),
    ("OutOfDateConfigurationNeeded", ar4si.HW_UNSAFE, ar4si.CONFIG_UNSAFE),
    ("Revoked", ar4si.HW_CONTRAINDICATED, ar4si.CONFIG_APPROVED),
]


@pytest.mark.parametrize(("status", "hardware", "configuration"), STATUS_TABLE)
def test_platform_statuses(pki: FakeIntelPki, status: str, hardware: int, configuration: int) -> None:
    quote = pki.forge(quote_bytes("D8"))
    result = verify(pki, quote, pki.collateral(_single_level(status, ["INTEL-SA-00001"]), qe_identity()))
    assert result.tcb.status == status and result.tcb.platform_status == status
    assert result.attester_claims["tcb"]["advisory_ids"] == ["INTEL-SA-00001"]
    assert result.trustworthiness_vector["hardware"] == hardware
    assert result.trustworthiness_vector["configuration"] == configuration


@pytest.mark.parametrize(
    ("platform", "other", "merged"),
    [
        ("UpToDate", "OutOfDate", "OutOfDate"),
        ("SWHardeningNeeded", "OutOfDate", "OutOfDate"),
        ("ConfigurationNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
        ("ConfigurationAndSWHardeningNeeded", "OutOfDate", "OutOfDateConfigurationNeeded"),
        ("UpToDate", "Revoked", "Revoked"),
        ("SWHardeningNeeded", "UpToDate", "SWHardeningNeeded"),
    ],
)
@pytest.mark.parametrize("source", ["qe", "module"])
def test_merge_with_module_and_qe(pki: FakeIntelPki, platform: str, other: str, merged: str, source: str) -> None:
    quote = pki.forge(quote_bytes("D8"))  # TEE_TCB_SVN 07 01 03: TDX_01, module ISVSVN 7
    info = _single_level(platform)
    qe = qe_identity()
    if source == "module":
        module = next(m for m in info["tdxModuleIdentities"] if m["id"] == "TDX_01")
        module["tcbLevels"] = [
            {
                "tcb": {"isvsvn": 1},
                "tcbDate": "2023-01-01T00:00:00Z",
                "tcbStatus": other,
                "advisoryIDs": ["INTEL-SA-00002"],
            }
        ]
    else:
        qe["tcbLevels"] = [
            {
                "tcb": {"isvsvn": 1},
                "tcbDate": "2023-01-01T00:00:00Z",
                "tcbStatus": other,
                "advisoryIDs": ["INTEL-SA-00002"],
            }
        ]
    result = verify(pki, quote, pki.collateral(info, qe))
    assert result.tcb.status == merged
    assert "INTEL-SA-00002" in result.tcb.advisory_ids
    # tcbDate: the earliest level that is not UpToDate.
    expected_date = "2023-01-01T00:00:00Z" if other != "UpToDate" else "2024-11-13T00:00:00Z"
    assert result.attester_claims["tcb"]["date"] == expected_date


def test_no_matching_levels(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"), pce_svn=4)  # below every level's PCESVN (13, 13, 5)
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "TDX_TCB_LEVEL_NOT_FOUND"
    quote = pki.forge(quote_bytes("D8"))
    qe = qe_identity(tcbLevels=[{"tcb": {"isvsvn": 99}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "UpToDate"}])
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe)) == "TDX_TCB_LEVEL_NOT_FOUND"
    info = tcb_info()
    info["tdxModuleIdentities"] = [m for m in info["tdxModuleIdentities"] if m["id"] != "TDX_01"]
    assert code_of(verify, pki, quote, pki.collateral(info, qe_identity())) == "TDX_TCB_LEVEL_NOT_FOUND"
    # TEE_TCB_SVN[0] below every level of the module identity.
    low = pki.forge(quote_bytes("D8"), body_patch={0: bytes([1])})
    assert code_of(verify, pki, low, pki.collateral(tcb_info(), qe_identity())) == "TDX_TCB_LEVEL_NOT_FOUND"


def test_tdx_components_compared_from_index_2_with_a_module_major_version(pki: FakeIntelPki) -> None:
    # TEE_TCB_SVN[2] (late microcode) below the UpToDate level's 3 → next level (OutOfDate) matches.
    quote = pki.forge(quote_bytes("D8"), body_patch={2: bytes([2])})
    assert verify(pki, quote, pki.collateral(tcb_info(), qe_identity())).tcb.platform_status == "OutOfDate"


def test_module_and_qe_identity_mismatch(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"), body_patch={64: b"\x01"})  # MRSIGNERSEAM
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "TDX_MODULE_MISMATCH"
    quote = pki.forge(quote_bytes("D8"), body_patch={112: b"\x01"})  # SEAM attributes
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "TDX_MODULE_MISMATCH"
    quote = pki.forge(quote_bytes("D8"), qe_patch={128: b"\x00"})  # QE MRSIGNER
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "TDX_QE_IDENTITY_MISMATCH"
    quote = pki.forge(quote_bytes("D8"), qe_patch={256: b"\x03"})  # ISVPRODID
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "TDX_QE_IDENTITY_MISMATCH"
    quote = pki.forge(quote_bytes("D8"), qe_patch={48: b"\x13"})  # ATTRIBUTES bit under the mask
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(), qe_identity())) == "TDX_QE_IDENTITY_MISMATCH"


def test_wrong_pce_id(pki: FakeIntelPki) -> None:
    quote = pki.forge(quote_bytes("D8"))
    assert code_of(verify, pki, quote, pki.collateral(tcb_info(pceId="0001"), qe_identity())) == "TDX_FMSPC_MISMATCH"


def test_spr_2023_collateral_levels() -> None:
    """TDX-D1/D4 with the 2023 PCS collateral (its signer cert was re-issued in 2025, so no end-to-end run)."""
    import json

    info = parse_tcb_info(json.loads(vector("tdx/go-tdx-guest-spr-v4/sample_tcbInfo_response"))["tcbInfo"])
    identity = parse_qe_identity(
        json.loads(vector("tdx/go-tdx-guest-spr-v4/sample_qeIdentity_response"))["enclaveIdentity"]
    )

    def evaluate(name: str) -> str:
        q = parse_quote(quote_bytes(name))
        ext = parse_sgx_extensions(x509.load_pem_x509_certificates(q.pck_chain_pem)[0])
        return evaluate_tcb(info, identity, q, ext).status

    assert evaluate("D4") == "UpToDate"
    assert code_of(evaluate, "D1") == "TDX_TCB_LEVEL_NOT_FOUND"
