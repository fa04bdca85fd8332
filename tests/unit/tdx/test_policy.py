"""TDX facts under the policy engine (reference values, configuration, TCB-recovery controls) on real and
forged quotes, and the Verifier wiring (registry, binding)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import Appraisal, EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx import TdxResult, parse_quote, verify_tdx_evidence
from attestation_broker.evidence.tdx.kind import TdxVerifier
from attestation_broker.policy import Decision, PolicyEngine, RecordedTcbCurrency
from attestation_broker.registry import default_registry
from attestation_broker.trust.cache import DirectoryStore
from attestation_broker.trust.currency import TcbCurrency
from attestation_broker.verifier import Submission, VerifyContext

from tests.support.context import offline_context
from tests.support.policy import decide, failed, policy_set
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


def as_appraisal(result: TdxResult) -> Appraisal:
    return Appraisal("tdx", result.trustworthiness_vector, result.attester_claims, result.verifier_claims,
                     findings=result.findings)  # fmt: skip


def d6() -> TdxResult:
    return verify_tdx_evidence(
        quote_bytes("D6"), offline_context(NOW_D6), expected_report_data=None, collateral_override=dcap_collateral("D6")
    )


def appraise_d6(rules: dict[str, Any]) -> Decision:
    return decide(as_appraisal(d6()), rules, now=NOW_D6)


def test_reference_values_over_mrtd_and_rtmrs() -> None:
    b = D6.body
    boot = appraise_d6(
        {"reference_values": [{"label": "td", "claims": {"tdx.mrtd": b.mr_td.hex(), "tdx.rtmrs.0": b.rtmrs[0].hex()}}]}
    )
    assert failed(boot) == [] and boot.appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT
    assert boot.status == EarStatus.AFFIRMING
    wrong = appraise_d6(
        {"reference_values": [{"label": "td", "claims": {"tdx.mrtd": "00" * 48, "tdx.rtmrs.1": b.rtmrs[1].hex()}}]}
    )
    assert failed(wrong) == ["reference_values"] and wrong.failed[0].actual == {"tdx.mrtd": b.mr_td.hex()}
    assert wrong.appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED


def test_configuration_rules() -> None:
    b = D6.body
    ok = appraise_d6(
        {
            "claims": {
                "tdx.mrconfigid": [b.mr_config_id.hex()],
                "tdx.mrowner": [b.mr_owner.hex()],
                "tdx.mrownerconfig": [b.mr_owner_config.hex()],
                "tdx.xfam": [b.xfam.hex()],
                "tdx.mrsignerseam": [b.mr_signer_seam.hex()],
                "tdx.attributes.sept_ve_disable": [True],
            }
        }
    )
    assert failed(ok) == [] and ok.appraisal.trustworthiness_vector["configuration"] == ar4si.CONFIG_APPROVED
    bad = appraise_d6({"claims": {"tdx.xfam": ["ffffffffffffffff"]}})
    assert failed(bad) == ["claims.tdx.xfam"]
    assert bad.appraisal.trustworthiness_vector["configuration"] == ar4si.CONFIG_CONTRAINDICATED


def test_tcb_rules() -> None:
    assert failed(appraise_d6({"min_tcb_status": "UpToDate"})) == []
    svn = "claims.tcb.tee_tcb_svn"
    assert failed(appraise_d6({"conditions": [{"name": "svn", "expr": f'{svn} >= "07"'}]})) == ["conditions.svn"]
    assert failed(appraise_d6({"conditions": [{"name": "svn", "expr": f'{svn} >= "0601"'}]})) == []
    assert d6().tcb.advisory_ids == () and failed(appraise_d6({"tcb_recovery": {"accepted_advisories": []}})) == []
    # The same platform after a TCB recovery that lists advisories (as Intel's tcbLevels do for SWHardeningNeeded):
    claims = d6().attester_claims
    flagged = replace(
        as_appraisal(d6()),
        attester_claims={**claims, "tcb": {**claims["tcb"], "advisory_ids": ["INTEL-SA-00837", "INTEL-SA-00960"]}},
    )
    refused = decide(flagged, {"tcb_recovery": {"accepted_advisories": ["INTEL-SA-00837"]}}, now=NOW_D6)
    assert failed(refused) == ["tcb_recovery.accepted_advisories"]
    assert refused.failed[0].actual == ["INTEL-SA-00837", "INTEL-SA-00960"]
    assert refused.failed[0].detail == "unaccepted: INTEL-SA-00960"
    both = ["INTEL-SA-00837", "INTEL-SA-00960"]
    assert failed(decide(flagged, {"tcb_recovery": {"accepted_advisories": both}}, now=NOW_D6)) == []
    assert failed(appraise_d6({"tcb_recovery": {"min_tcb_date": "2099-01-01"}})) == ["tcb_recovery.min_tcb_date"]
    assert failed(appraise_d6({"tcb_recovery": {"min_tcb_date": "2018-01-01"}})) == []


def _outdated_collateral(pki: FakeIntelPki) -> Any:
    info = shifted(c1_json("tcb_info_90c06f000000.json"), NOW_C1)
    info["tcbLevels"] = [
        copy.deepcopy(info["tcbLevels"][0]) | {"tcbStatus": "OutOfDate", "tcbDate": "2026-01-01T00:00:00Z"}
    ]
    return pki.collateral(info, shifted(c1_json("qe_identity.json"), NOW_C1))


class _Recorded:
    """A TcbCurrency as the collateral recorder would answer: the level appeared at a fixed instant."""

    def __init__(self, since: datetime) -> None:
        self.since = since

    def current_level_since(self, appraisal: Appraisal) -> datetime | None:
        return self.since


@pytest.mark.parametrize(
    ("rules", "failing", "hardware"),
    [
        ({}, [], ar4si.HW_UNSAFE),
        ({"tcb_recovery": {"grace_days": 60}}, [], ar4si.HW_UNSAFE),
        ({"tcb_recovery": {"grace_days": 10}}, ["tcb_recovery.grace_days"], ar4si.HW_CONTRAINDICATED),
        ({"min_tcb_status": "SWHardeningNeeded"}, ["min_tcb_status"], ar4si.HW_CONTRAINDICATED),
    ],
)
def test_out_of_date_grace_period(rules: dict[str, Any], failing: list[str], hardware: int) -> None:
    pki = FakeIntelPki.create()
    quote = pki.forge(quote_bytes("D8"))
    result = verify_tdx_evidence(
        quote, offline_context(NOW_C1), expected_report_data=None,
        collateral_override=_outdated_collateral(pki), trust=pki.trust,
    )  # fmt: skip
    assert result.tcb.status == "OutOfDate" and result.trustworthiness_vector["hardware"] == ar4si.HW_UNSAFE
    decision = decide(as_appraisal(result), rules, now=NOW_C1)
    assert failed(decision) == failing
    assert decision.appraisal.trustworthiness_vector["hardware"] == hardware


def test_grace_period_reads_the_injected_tcb_currency() -> None:
    pki = FakeIntelPki.create()
    result = verify_tdx_evidence(
        pki.forge(quote_bytes("D8")), offline_context(NOW_C1), expected_report_data=None,
        collateral_override=_outdated_collateral(pki), trust=pki.trust,
    )  # fmt: skip
    policy = policy_set({"tdx": {"tcb_recovery": {"grace_days": 10}}}).for_kind("tdx")
    recent = PolicyEngine(tcb_currency=_Recorded(NOW_C1 - timedelta(days=3)))
    late = PolicyEngine(tcb_currency=_Recorded(NOW_C1 - timedelta(days=11)))
    assert recent.evaluate(policy, as_appraisal(result), now=NOW_C1, nonce_bound=False).failed == ()
    (rule,) = late.evaluate(policy, as_appraisal(result), now=NOW_C1, nonce_bound=False).failed
    assert rule.rule == "tcb_recovery.grace_days" and rule.actual == (NOW_C1 - timedelta(days=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_debug_td_and_binding_through_the_verifier() -> None:
    pki = FakeIntelPki.create()
    binding = ExpectedBinding(nonce=b"\x01" * 32, user_data=b"key")
    debug_attrs = (0x10000001).to_bytes(8, "little")
    quote = pki.forge(quote_bytes("D8"), body_patch={120: debug_attrs, 520: binding.report_data()})
    info = shifted(c1_json("tcb_info_90c06f000000.json"), NOW_C1)
    collateral = pki.collateral(info, shifted(c1_json("qe_identity.json"), NOW_C1))
    result = verify_tdx_evidence(
        quote, offline_context(NOW_C1), expected_report_data=binding.report_data(),
        collateral_override=collateral, trust=pki.trust,
    )  # fmt: skip
    assert result.attester_claims["dbgstat"] == "enabled"
    assert result.attester_claims["tdx"]["attributes"]["debug"] is True
    assert result.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_VISIBLE == 96
    assert result.verifier_claims["bindings"] == {"nonce": "checked"}
    refused = decide(as_appraisal(result), {}, now=NOW_C1)
    assert failed(refused) == ["debug", "trustworthiness"]
    allowed = decide(as_appraisal(result), {"debug": "allowed"}, now=NOW_C1)
    assert failed(allowed) == [] and allowed.status == EarStatus.WARNING
    with pytest.raises(BrokerError) as exc:
        verify_tdx_evidence(
            quote, offline_context(NOW_C1), expected_report_data=ExpectedBinding(b"\x02" * 32).report_data(),
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
    assert appraisal.policy_ids == ()
    assert appraisal.attester_claims["tcb"]["status"] == "UpToDate"
    # Hex evidence (as dcap-qvl's sample ships it) decodes to the same quote.
    hex_submission = Submission(evidence=b"0x" + quote_bytes("D6").hex().encode(), fields=submission.fields)
    assert verifier.verify(hex_submission, ctx).attester_claims == appraisal.attester_claims
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(evidence=quote_bytes("D6"), fields={"collateral": {"x": 1}}), ctx)
    assert exc.value.code.name == "COLLATERAL_INVALID"
    late = VerifyContext(now=NOW_D6 + timedelta(days=60), collateral=ctx.collateral, settings=ctx.settings)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(submission, late)
    assert exc.value.code.name == "COLLATERAL_EXPIRED"


@pytest.mark.parametrize(
    ("published_days_ago", "recorded", "failing"),
    [
        (3, True, []),  # the refresher saw the new TCB evaluation data number published 3 days ago: in grace
        (11, True, ["tcb_recovery.grace_days"]),  # published 11 days ago: the 10-day grace is over
        (3, False, ["tcb_recovery.grace_days"]),  # no record for this FMSPC: falls back to the evidence's tcbDate
    ],
)
def test_grace_period_from_the_recorded_tcb_currency(
    tmp_path: Path, published_days_ago: int, recorded: bool, failing: list[str]
) -> None:
    pki = FakeIntelPki.create()
    result = verify_tdx_evidence(
        pki.forge(quote_bytes("D8")), offline_context(NOW_C1), expected_report_data=None,
        collateral_override=_outdated_collateral(pki), trust=pki.trust,
    )  # fmt: skip
    appraisal = as_appraisal(result)
    fmspc = str(appraisal.attester_claims["tdx"]["fmspc"]).upper()
    store = DirectoryStore(tmp_path)
    levels = TcbCurrency(store, emit=lambda _record: None)
    scope = f"tdx:{fmspc}" if recorded else "tdx:000000000000"
    published = NOW_C1 - timedelta(days=published_days_ago)
    levels.observe("intel", scope, (19,), NOW_C1, published)
    levels.save()
    loads: list[int] = []

    def load() -> TcbCurrency:
        loads.append(1)
        return TcbCurrency(store, emit=lambda _record: None)

    engine = PolicyEngine(tcb_currency=RecordedTcbCurrency(load))
    policy = policy_set({"tdx": {"tcb_recovery": {"grace_days": 10}}}).for_kind("tdx")
    decision = engine.evaluate(policy, appraisal, now=NOW_C1, nonce_bound=False)
    assert failed(decision) == failing
    assert loads == [1]  # read from the shared store once, on first use
