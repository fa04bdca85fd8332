"""The policy engine on a real SEV-SNP appraisal: claim paths, nonce, CEL variables, absent claims, rule
order and the trustworthiness rule; plus evaluation cost stays out of tests (see bench/bench_policy.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from attestation_broker.appraisal import Appraisal

from tests.support.policy import decide, failed
from tests.unit.snp.test_verify import inputs, run


@pytest.fixture(scope="module")
def d2() -> tuple[Appraisal, object]:
    report, certs, now = inputs("SNP-D2")
    return run(report, certs, now).appraisal(), now


@pytest.mark.parametrize(
    ("rules", "failing", "actual"),
    [
        ({"claims": {"snp.current_tcb.microcode": [206], "tcb.microcode": [115]}}, [], None),
        ({"claims": {"verifier.signing_key": ["vcek"]}}, [], None),
        ({"claims": {"verifier.product": ["Genoa"]}}, ["claims.verifier.product"], "Milan"),
        ({"claims": {"snp.no_such_claim": ["x"]}}, ["claims.snp.no_such_claim"], "(absent)"),
        ({"claims": {"snp.policy_bits.debug": [False]}}, [], None),
        ({"conditions": [{"name": "kind", "expr": 'kind == "snp" && vector.hardware == 2'}]}, [], None),
        ({"conditions": [{"name": "time", "expr": 'now > timestamp("2030-01-01T00:00:00Z")'}]}, ["conditions.time"],
         False),
        ({"conditions": [{"name": "verifier", "expr": 'verifier.bindings.nonce == "not-requested"'}]}, [], None),
        ({"min_tcb_status": "UpToDate"}, [], None),
        ({"tcb_recovery": {"min_tcb_date": "2020-01-01"}}, ["tcb_recovery.min_tcb_date"], "(absent)"),
        ({"max_evidence_age_seconds": 60}, ["max_evidence_age_seconds"], "(evidence carries no time)"),
    ],
)  # fmt: skip
def test_rules(d2: tuple[Appraisal, object], rules: dict[str, object], failing: list[str], actual: object) -> None:
    appraisal, now = d2
    decision = decide(appraisal, rules, now=now)  # type: ignore[arg-type]
    assert failed(decision) == failing
    if failing:
        assert decision.failed[0].actual == actual and decision.failed[0].policy == "snp-test"


def test_nonce_rule_reads_the_broker_binding(d2: tuple[Appraisal, object]) -> None:
    appraisal, now = d2
    assert failed(decide(appraisal, {"nonce": "required"}, now=now, nonce_bound=True)) == []  # type: ignore[arg-type]
    refused = decide(appraisal, {"nonce": "required"}, now=now)  # type: ignore[arg-type]
    assert failed(refused) == ["nonce"] and refused.failed[0].actual == "none"


def test_results_list_every_rule_in_order(d2: tuple[Appraisal, object]) -> None:
    appraisal, now = d2
    rules = {
        "reference_values": [{"label": "x", "claims": {"measurement": "00"}}],
        "claims": {"tee": ["sev-snp"]},
        "conditions": [{"name": "c", "expr": "true"}],
    }
    decision = decide(appraisal, rules, now=now)  # type: ignore[arg-type]
    assert [(r.rule, r.passed) for r in decision.results] == [
        ("reference_values", False),
        ("debug", True),
        ("claims.tee", True),
        ("conditions.c", True),
    ]
    # The failure is reported with a mapping that carries no evidence bytes: claim values and labels only.
    assert set(decision.failed[0].as_dict()) == {"policy", "rule", "expected", "actual", "detail"}


def test_same_appraisal_same_decision_over_time(d2: tuple[Appraisal, object]) -> None:
    appraisal, now = d2
    rules = {"claims": {"tee": ["sev-snp"]}}
    later = now + timedelta(days=365)  # type: ignore[operator]
    assert decide(appraisal, rules, now=now).results == decide(appraisal, rules, now=later).results  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expr", "claims", "verifier"),
    [
        ("claims.snp.vmpl == 0", frozenset({"snp"}), frozenset()),
        (
            'claims["tcb"].status == "UpToDate" && verifier.product == "Milan"',
            frozenset({"tcb"}),
            frozenset({"product"}),
        ),
        ("size(claims) > 3", None, frozenset()),
        ('has(claims.nope) || verifier["signing_key"] == "vcek"', frozenset({"nope"}), frozenset({"signing_key"})),
    ],
)
def test_conditions_bind_only_the_claims_they_read(
    d2: tuple[Appraisal, object], expr: str, claims: frozenset[str] | None, verifier: frozenset[str]
) -> None:
    from attestation_broker.policy.cel import Condition

    condition = Condition.compile("c", expr)
    assert condition.needs == {"claims": claims, "verifier": verifier}
    appraisal, now = d2
    # The subset activation decides exactly like the full one.
    assert failed(decide(appraisal, {"conditions": [{"name": "c", "expr": expr}]}, now=now)) == []  # type: ignore[arg-type]
