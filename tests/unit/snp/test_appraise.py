"""Policy parsing and grading on real reports."""

from __future__ import annotations

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.snp.appraise import parse_policy

from tests.support.errors import code_of
from tests.unit.snp.test_verify import inputs, run


def grade(name: str, policy: dict[str, object]):
    report, certs, now = inputs(name)
    return run(report, certs, now, policy=policy)


D2_MEASUREMENT = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
D2_ID_KEY = "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3"


@pytest.mark.parametrize(
    "policy",
    [
        {"bogus": 1},
        {"allow_debug": True, "allow_migration_agent": True},  # constrains nothing
        {"measurements": ["abcd"]},
        {"measurements": []},
        {"min_tcb": {"bios": 1}},
        {"min_tcb": {"snp": 300}},
        {"max_vmpl": 4},
        {"products": ["Rome"]},
        {"min_abi": "1"},
        {"allow_debug": "no"},
        {"id": ""},
    ],
)
def test_invalid_policies(policy) -> None:
    with pytest.raises(BrokerError) as exc:
        parse_policy(policy)
    assert exc.value.code.name == "POLICY_INVALID"


def test_allow_any_and_ids() -> None:
    assert parse_policy({"allow_any": True, "allow_debug": True, "allow_migration_agent": True}).allow_any
    assert parse_policy({}).policy_id == "snp-default"
    assert parse_policy({"id": "prod"}).policy_id == "prod"
    assert parse_policy({"max_vmpl": 0}).policy_id == parse_policy({"max_vmpl": 0}).policy_id != "snp-default"


def test_policy_invalid_raised_by_pipeline() -> None:
    report, certs, now = inputs("SNP-D2")
    assert code_of(run, report, certs, now, policy={"allow_debug": True, "allow_migration_agent": True}) == (
        "POLICY_INVALID"
    )


def test_measurement_allow_list_affirms() -> None:
    result = grade("SNP-D2", {"id": "p", "measurements": [D2_MEASUREMENT], "id_key_digests": [D2_ID_KEY]})
    assert result.trustworthiness_vector["executables"] == 3
    assert result.status.value == "affirming"
    assert result.appraisal().policy_ids == ("p",)


def test_measurement_not_listed() -> None:
    result = grade("SNP-D2", {"measurements": ["00" * 48]})
    assert result.trustworthiness_vector["executables"] == 96
    assert result.status.value == "contraindicated"


def test_debug_allowed_is_warning() -> None:
    result = grade("SNP-D1", {"allow_debug": True, "max_vmpl": 0})
    assert result.trustworthiness_vector["runtime-opaque"] == 32
    assert result.status.value == "warning"


def test_min_tcb_out_of_date() -> None:
    result = grade("SNP-D2", {"min_tcb": {"microcode": 116}})
    assert result.attester_claims["tcb"]["status"] == "OutOfDate"
    assert result.trustworthiness_vector["hardware"] == 32
    ok = grade("SNP-D2", {"min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}})
    assert ok.attester_claims["tcb"]["status"] == "UpToDate"


@pytest.mark.parametrize(
    "name,policy,claim,value",
    [
        ("SNP-D3", {"max_vmpl": 0}, "configuration", 96),
        ("SNP-D3", {"max_vmpl": 1}, "configuration", 2),
        ("SNP-D3", {"signing_keys": ["vcek"]}, "configuration", 96),
        ("SNP-D6a", {"allow_smt": False}, "configuration", 96),  # PLATFORM_INFO.SMT_EN = 1
        ("SNP-D5", {"allow_smt": False}, "configuration", 2),  # Genoa Azure host: SMT_EN = 0
        ("SNP-D2", {"min_abi": "0.31"}, "configuration", 2),
        ("SNP-D2", {"min_abi": "1.0"}, "configuration", 96),
        ("SNP-D2", {"host_data": ["11" * 32]}, "configuration", 96),
        ("SNP-D2", {"family_ids": ["01" + "00" * 15]}, "configuration", 2),
        ("SNP-D2", {"min_guest_svn": 5}, "configuration", 96),
        ("SNP-D5", {"products": ["Milan"]}, "hardware", 96),
        ("SNP-D5", {"products": ["Genoa"]}, "hardware", 2),
    ],
)
def test_graded_constraints(name, policy, claim, value) -> None:
    result = grade(name, policy)
    assert result.trustworthiness_vector[claim] == value
    if value == 96:
        assert result.findings
