"""SEV-SNP facts under the policy engine, on real reports: every rule an SNP operator uses, passing and
failing, with the vector effect the engine applies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.policy import decide, failed
from tests.unit.snp.test_verify import inputs, run

D2_MEASUREMENT = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
D2_ID_KEY = "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3"


def grade(name: str, rules: dict[str, object]):  # type: ignore[no-untyped-def]
    report, certs, now = inputs(name)
    return decide(run(report, certs, now).appraisal(), rules, now=now)


def test_reference_value_match_affirms() -> None:
    rv = [{"label": "d2", "claims": {"measurement": D2_MEASUREMENT, "snp.id_key_digest": D2_ID_KEY}}]
    decision = grade("SNP-D2", {"reference_values": rv})
    assert failed(decision) == []
    assert decision.appraisal.trustworthiness_vector["executables"] == 3
    assert decision.status.value == "affirming"
    assert decision.appraisal.policy_ids[0].startswith("snp-test@sha256:")


def test_reference_value_mismatch_names_the_claim() -> None:
    decision = grade("SNP-D2", {"reference_values": [{"label": "other", "claims": {"measurement": "00" * 48}}]})
    (rule,) = decision.failed
    assert rule.rule == "reference_values" and rule.actual == {"measurement": D2_MEASUREMENT}
    assert "closest is other, differing in measurement" in rule.detail
    assert decision.appraisal.trustworthiness_vector["executables"] == 96


def test_debug_allowed_is_a_waived_warning() -> None:
    decision = grade("SNP-D1", {"debug": "allowed", "claims": {"snp.vmpl": [0]}})
    assert failed(decision) == []
    assert decision.appraisal.trustworthiness_vector["runtime-opaque"] == 96
    assert decision.appraisal.waived == ("runtime-opaque",) and decision.status.value == "warning"


def test_debug_forbidden_by_default() -> None:
    decision = grade("SNP-D1", {})
    assert failed(decision) == ["debug", "trustworthiness"] and decision.failed[0].actual == "enabled"
    assert decision.failed[1].actual == {"ear_status": "contraindicated", "runtime-opaque": 96}


def test_tcb_minimums_over_reported_tcb() -> None:
    low = grade("SNP-D2", {"tcb_minimums": {"microcode": 116}})
    assert failed(low) == ["tcb_minimums"] and low.failed[0].actual == {"microcode": 115}
    assert low.appraisal.trustworthiness_vector["hardware"] == 96
    ok = grade("SNP-D2", {"tcb_minimums": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}})
    assert failed(ok) == []


@pytest.mark.parametrize(
    ("name", "rules", "failing"),
    [
        ("SNP-D3", {"claims": {"snp.vmpl": [0]}}, ["claims.snp.vmpl"]),
        ("SNP-D3", {"conditions": [{"name": "vmpl", "expr": "claims.snp.vmpl <= 1"}]}, []),
        ("SNP-D3", {"claims": {"snp.signing_key": ["vcek"]}}, ["claims.snp.signing_key"]),
        (
            "SNP-D6a",
            {"conditions": [{"name": "smt", "expr": "!claims.snp.platform_info_bits.smt_en"}]},
            ["conditions.smt"],
        ),
        ("SNP-D5", {"conditions": [{"name": "smt", "expr": "!claims.snp.platform_info_bits.smt_en"}]}, []),
        ("SNP-D2", {"claims": {"snp.host_data": ["11" * 32]}}, ["claims.snp.host_data"]),
        ("SNP-D2", {"claims": {"snp.family_id": ["01" + "00" * 15]}}, []),
        ("SNP-D2", {"conditions": [{"name": "svn", "expr": "claims.snp.guest_svn >= 5"}]}, ["conditions.svn"]),
        ("SNP-D5", {"claims": {"snp.product": ["Milan"]}}, ["claims.snp.product"]),
        ("SNP-D5", {"claims": {"snp.product": ["Genoa"]}}, []),
        ("SNP-D2", {"nonce": "required"}, ["nonce"]),
        ("SNP-D2", {"conditions": [{"name": "missing", "expr": "claims.snp.nope == 1"}]}, ["conditions.missing"]),
    ],
)
def test_rules_over_real_reports(name: str, rules: dict[str, object], failing: list[str]) -> None:
    decision = grade(name, rules)
    assert failed(decision) == failing
    if failing:
        assert all(r.detail for r in decision.failed)


def test_evaluation_is_pure_over_time() -> None:
    a = grade("SNP-D2", {"claims": {"tee": ["sev-snp"]}})
    report, certs, now = inputs("SNP-D2")
    b = decide(
        run(report, certs, now).appraisal(), {"claims": {"tee": ["sev-snp"]}}, now=datetime(2030, 1, 1, tzinfo=UTC)
    )
    assert a.results == b.results
