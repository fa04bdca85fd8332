"""Nitro appraisal policy: parsing (unknown keys rejected), debug handling, PCR allow-lists → AR4SI vector."""

from __future__ import annotations

from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.evidence.nitro.appraise import NitroPolicy

from tests.support.errors import code_of

from .support import DEBUG, NONDEBUG, SAN_2023, SAN_2023_PCRS, payload_of, run

ZERO = "00" * 48


def test_default_policy_contraindicates_debug() -> None:
    appraisal = run(DEBUG.raw(), DEBUG.now)
    assert appraisal.attester_claims["dbgstat"] == "enabled"
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_CONTRAINDICATED
    assert appraisal.status is EarStatus.CONTRAINDICATED
    assert any("debug" in finding for finding in appraisal.findings)


def test_allow_debug_downgrades_to_warning() -> None:
    appraisal = run(DEBUG.raw(), DEBUG.now, policy={"allow_debug": True})
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_VISIBLE
    assert appraisal.status is EarStatus.WARNING
    assert appraisal.policy_ids[0].startswith("nitro/sha256:")


def test_matching_allow_list_affirms() -> None:
    policy = {"id": "evervault-cage-2023-01", "pcrs": {k: [v] for k, v in SAN_2023_PCRS.items()}}
    appraisal = run(SAN_2023.raw(), SAN_2023.now, policy=policy)
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT
    assert appraisal.status is EarStatus.AFFIRMING
    assert appraisal.policy_ids == ("evervault-cage-2023-01",)
    assert appraisal.findings == ()
    for index, value in SAN_2023_PCRS.items():
        assert appraisal.attester_claims["nitro"]["pcrs"][index] == value


def test_allow_list_accepts_any_listed_value_and_uppercase_hex() -> None:
    policy = {"pcrs": {"0": [ZERO, SAN_2023_PCRS["0"].upper()]}}
    appraisal = run(SAN_2023.raw(), SAN_2023.now, policy=policy)
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT


@pytest.mark.parametrize("index", ["0", "1", "2", "8"])
def test_executable_pcr_mismatch_contraindicates(index: str) -> None:
    pcrs = {k: [v] for k, v in SAN_2023_PCRS.items()}
    pcrs[index] = ["ab" * 48]
    appraisal = run(SAN_2023.raw(), SAN_2023.now, policy={"pcrs": pcrs})
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED
    assert appraisal.status is EarStatus.CONTRAINDICATED
    assert appraisal.findings == (f"PCR{index} is not in the policy allow-list",)


def test_debug_document_fails_a_production_allow_list() -> None:
    appraisal = run(DEBUG.raw(), DEBUG.now, policy={"pcrs": {"0": [SAN_2023_PCRS["0"]]}, "allow_debug": True})
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED


def test_pcr3_drives_configuration_and_pcr4_instance_identity() -> None:
    pcrs = payload_of(NONDEBUG.raw())["pcrs"]
    good = {"3": [pcrs[3].hex()], "4": [pcrs[4].hex()]}
    appraisal = run(NONDEBUG.raw(), NONDEBUG.now, policy={"pcrs": good})
    assert appraisal.trustworthiness_vector["configuration"] == ar4si.CONFIG_APPROVED
    assert appraisal.trustworthiness_vector["instance-identity"] == ar4si.IDENTITY_TRUSTED
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_UNRECOGNIZED

    bad = {"3": ["11" * 48], "4": ["22" * 48]}
    appraisal = run(NONDEBUG.raw(), NONDEBUG.now, policy={"pcrs": bad})
    assert appraisal.trustworthiness_vector["configuration"] == ar4si.CONFIG_CONTRAINDICATED
    assert appraisal.trustworthiness_vector["instance-identity"] == ar4si.IDENTITY_UNTRUSTED
    assert appraisal.status is EarStatus.CONTRAINDICATED


def test_default_policy_object() -> None:
    policy = NitroPolicy.parse({})
    assert policy.policy_id == "nitro/default"
    assert policy.allow_debug is False and policy.max_age_seconds == 300 and not policy.pcrs


def test_policy_id_is_stable_and_content_derived() -> None:
    a = NitroPolicy.parse({"allow_debug": True, "max_age_seconds": 60})
    b = NitroPolicy.parse({"max_age_seconds": 60, "allow_debug": True})
    c = NitroPolicy.parse({"max_age_seconds": 61, "allow_debug": True})
    assert a.policy_id == b.policy_id != c.policy_id


@pytest.mark.parametrize(
    "section",
    [
        {"unknown": 1},
        {"pcrs": {}},
        {"pcrs": []},
        {"pcrs": {"5": [ZERO]}},
        {"pcrs": {"PCR0": [ZERO]}},
        {"pcrs": {"0": []}},
        {"pcrs": {"0": ZERO}},
        {"pcrs": {"0": ["zz" * 48]}},
        {"pcrs": {"0": ["00" * 47]}},
        {"pcrs": {"0": [48]}},
        {"allow_debug": "yes"},
        {"allow_debug": 1},
        {"max_age_seconds": 0},
        {"max_age_seconds": True},
        {"max_age_seconds": 1.5},
        {"id": ""},
        {"id": 7},
    ],
)
def test_invalid_policy(section: dict[str, Any]) -> None:
    assert code_of(lambda: NitroPolicy.parse(section)) == "POLICY_INVALID"
    assert code_of(lambda: run(NONDEBUG.raw(), NONDEBUG.now, policy=section)) == "POLICY_INVALID"
