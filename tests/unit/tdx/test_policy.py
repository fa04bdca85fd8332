"""The tdx policy object, its appraisal of real quotes, and the Verifier wiring (registry, binding)."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx import TdxResult, parse_quote, verify_tdx_evidence
from attestation_broker.evidence.tdx.appraise import parse_policy
from attestation_broker.evidence.tdx.kind import TdxVerifier
from attestation_broker.registry import default_registry
from attestation_broker.verifier import Submission, VerifyContext

from tests.support.context import offline_context
from tests.unit.tdx.support import (
    NOW_C1,
    NOW_D6,
    FakeIntelPki,
    c1_json,
    dcap_collateral,
    dcap_json,
    quote_bytes,
    shifted,
)

D6 = parse_quote(quote_bytes("D6"))


def appraise_d6(policy: dict[str, Any]) -> TdxResult:
    return verify_tdx_evidence(
        quote_bytes("D6"),
        offline_context(NOW_D6),
        expected_report_data=None,
        policy=policy,
        collateral_override=dcap_collateral("D6"),
    )


@pytest.mark.parametrize(
    "policy",
    [
        {"unknown": 1},
        {"allow_debug": "yes"},
        {"accepted_tcb_statuses": ["Fine"]},
        {"accepted_tcb_statuses": []},
        {"mrtd": []},
        {"mrtd": ["zz"]},
        {"mrtd": ["00"]},
        {"out_of_date_grace_days": -1},
        {"min_tee_tcb_svn": "0102"},
        {"id": ""},
    ],
)
def test_invalid_policies(policy: dict[str, Any]) -> None:
    with pytest.raises(BrokerError) as exc:
        parse_policy(policy)
    assert exc.value.code.name == "POLICY_INVALID"
    with pytest.raises(BrokerError) as exc:
        appraise_d6(policy)
    assert exc.value.code.name == "POLICY_INVALID"


def test_measurement_allow_lists() -> None:
    b = D6.body
    boot = appraise_d6({"id": "p1", "mrtd": [b.mr_td.hex()], "rtmr0": [b.rtmrs[0].hex()]})
    assert boot.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT and boot.policy_id == "p1"
    runtime = appraise_d6({"mrtd": [b.mr_td.hex()], "rtmr3": [b.rtmrs[3].hex()]})
    assert runtime.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_RUNTIME
    wrong = appraise_d6({"mrtd": ["00" * 48], "rtmr1": [b.rtmrs[1].hex()]})
    assert wrong.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED
    assert any("mrtd" in f for f in wrong.findings)
    assert ar4si.status_of(wrong.trustworthiness_vector) == EarStatus.CONTRAINDICATED


def test_configuration_rules() -> None:
    b = D6.body
    ok = appraise_d6(
        {
            "mrconfigid": [b.mr_config_id.hex()],
            "mrowner": [b.mr_owner.hex()],
            "mrownerconfig": [b.mr_owner_config.hex()],
            "xfam": [b.xfam.hex()],
            "mrsignerseam": [b.mr_signer_seam.hex()],
            "require_sept_ve_disable": True,
        }
    )
    assert ok.trustworthiness_vector["configuration"] == ar4si.CONFIG_APPROVED
    bad = appraise_d6({"xfam": ["ffffffffffffffff"]})
    assert bad.trustworthiness_vector["configuration"] == ar4si.CONFIG_CONTRAINDICATED


def test_tcb_policy() -> None:
    assert appraise_d6({"accepted_tcb_statuses": ["OutOfDate"]}).trustworthiness_vector["hardware"] == (
        ar4si.HW_CONTRAINDICATED
    )
    assert (
        appraise_d6({"min_tee_tcb_svn": "07" + "00" * 15}).trustworthiness_vector["hardware"]
        == ar4si.HW_CONTRAINDICATED
    )
    assert (
        appraise_d6({"min_tee_tcb_svn": "06010300" + "00" * 12}).trustworthiness_vector["hardware"] == ar4si.HW_GENUINE
    )


def _outdated_collateral(pki: FakeIntelPki) -> Any:
    info = shifted(c1_json("tcb_info_90c06f000000.json"), NOW_C1)
    info["tcbLevels"] = [
        copy.deepcopy(info["tcbLevels"][0]) | {"tcbStatus": "OutOfDate", "tcbDate": "2026-01-01T00:00:00Z"}
    ]
    return pki.collateral(info, shifted(c1_json("qe_identity.json"), NOW_C1))


@pytest.mark.parametrize(
    ("grace", "hardware"), [(None, ar4si.HW_UNSAFE), (60, ar4si.HW_UNSAFE), (10, ar4si.HW_CONTRAINDICATED)]
)
def test_out_of_date_grace_period(grace: int | None, hardware: int) -> None:
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    policy: dict[str, Any] = {} if grace is None else {"out_of_date_grace_days": grace}
    result = verify_tdx_evidence(
        quote, offline_context(NOW_C1), expected_report_data=None, policy=policy,
        collateral_override=_outdated_collateral(pki), trust=pki.trust,
    )  # fmt: skip
    assert result.tcb.status == "OutOfDate"
    assert result.trustworthiness_vector["hardware"] == hardware


def test_debug_td_and_binding_through_the_verifier() -> None:
    pki = FakeIntelPki.create()
    binding = ExpectedBinding(nonce=b"\x01" * 32, user_data=b"key")
    debug_attrs = (0x10000001).to_bytes(8, "little")
    quote = pki.forge(quote_bytes("D8"), body_patch={120: debug_attrs, 520: binding.report_data()})
    info = shifted(c1_json("tcb_info_90c06f000000.json"), NOW_C1)
    collateral = pki.collateral(info, shifted(c1_json("qe_identity.json"), NOW_C1))
    for policy, runtime in (({}, ar4si.RUNTIME_CONTRAINDICATED), ({"allow_debug": True}, ar4si.RUNTIME_VISIBLE)):
        result = verify_tdx_evidence(
            quote, offline_context(NOW_C1), expected_report_data=binding.report_data(), policy=policy,
            collateral_override=collateral, trust=pki.trust,
        )  # fmt: skip
        assert result.attester_claims["dbgstat"] == "enabled"
        assert result.attester_claims["tdx"]["attributes"]["debug"] is True
        assert result.trustworthiness_vector["runtime-opaque"] == runtime
        assert result.verifier_claims["bindings"] == {"nonce": "checked"}
    with pytest.raises(BrokerError) as exc:
        verify_tdx_evidence(
            quote, offline_context(NOW_C1), expected_report_data=ExpectedBinding(b"\x02" * 32).report_data(), policy={},
            collateral_override=collateral, trust=pki.trust,
        )  # fmt: skip
    assert exc.value.code.name == "NONCE_BINDING_MISMATCH"


def test_verifier_class_and_registry() -> None:
    verifier = default_registry().require("tdx")
    assert isinstance(verifier, TdxVerifier) and verifier.kind == "tdx"
    ctx = offline_context(NOW_D6)
    submission = Submission(evidence=quote_bytes("D6"), fields={"collateral": json.loads(dcap_json("D6"))})
    appraisal = verifier.verify(submission, ctx)
    # No measurement allow-list: executables EXEC_UNRECOGNIZED, a warning.
    assert appraisal.kind == "tdx" and appraisal.status == EarStatus.WARNING
    assert appraisal.policy_ids == ("tdx-default",)
    assert appraisal.attester_claims["tcb"]["status"] == "UpToDate"
    # Hex evidence (as dcap-qvl's sample ships it) decodes to the same quote.
    hex_submission = Submission(evidence=b"0x" + quote_bytes("D6").hex().encode(), fields=submission.fields)
    assert verifier.verify(hex_submission, ctx).attester_claims == appraisal.attester_claims
    # ctx.policy is honoured.
    strict = VerifyContext(now=ctx.now, collateral=ctx.collateral, settings=ctx.settings, policy={"mrtd": ["00" * 48]})
    assert verifier.verify(submission, strict).status == EarStatus.CONTRAINDICATED
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(evidence=quote_bytes("D6"), fields={"collateral": {"x": 1}}), ctx)
    assert exc.value.code.name == "COLLATERAL_INVALID"
    late = VerifyContext(now=NOW_D6 + timedelta(days=60), collateral=ctx.collateral, settings=ctx.settings)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(submission, late)
    assert exc.value.code.name == "COLLATERAL_EXPIRED"
