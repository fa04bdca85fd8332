"""Nitro facts under the policy engine: debug handling, PCR reference values, PCR3/PCR4 constraints, freshness
(``max_evidence_age_seconds``, 300 s in the built-in default) → failed rules and the AR4SI vector."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.policy import default_policy

from tests.support.policy import decide, failed

from .support import DEBUG, NONDEBUG, SAN_2023, SAN_2023_PCRS, payload_of, run

ZERO = "00" * 48


def reference(pcrs: dict[str, str], label: str = "cage") -> list[dict[str, Any]]:
    return [{"label": label, "claims": {f"nitro.pcrs.{k}": v for k, v in pcrs.items()}}]


def test_default_policy_refuses_debug() -> None:
    appraisal = run(DEBUG.raw(), DEBUG.now)
    assert appraisal.attester_claims["dbgstat"] == "enabled"
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_VISIBLE == 96
    assert any("debug" in finding for finding in appraisal.findings)
    decision = decide(appraisal, None, now=DEBUG.now)
    assert failed(decision) == ["debug", "trustworthiness"]
    assert decision.appraisal.policy_ids[0].startswith("nitro-default@sha256:")


def test_allow_debug_is_a_waived_warning() -> None:
    decision = decide(run(DEBUG.raw(), DEBUG.now), {"debug": "allowed"}, now=DEBUG.now)
    assert failed(decision) == [] and decision.status is EarStatus.WARNING
    assert decision.appraisal.trustworthiness_vector["runtime-opaque"] == 96


def test_matching_reference_value_affirms() -> None:
    appraisal = run(SAN_2023.raw(), SAN_2023.now)
    decision = decide(appraisal, {"reference_values": reference(SAN_2023_PCRS)}, now=SAN_2023.now)
    assert failed(decision) == [] and decision.status is EarStatus.AFFIRMING
    assert decision.appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT
    for index, value in SAN_2023_PCRS.items():
        assert appraisal.attester_claims["nitro"]["pcrs"][index] == value


def test_any_listed_entry_and_uppercase_hex_match() -> None:
    rules = {"reference_values": reference({"0": ZERO}, "old") + reference({"0": SAN_2023_PCRS["0"].upper()}, "new")}
    decision = decide(run(SAN_2023.raw(), SAN_2023.now), rules, now=SAN_2023.now)
    assert failed(decision) == [] and decision.results[0].detail == "matches reference value new"


@pytest.mark.parametrize("index", ["0", "1", "2", "8"])
def test_executable_pcr_mismatch_is_refused(index: str) -> None:
    pcrs = dict(SAN_2023_PCRS) | {index: "ab" * 48}
    decision = decide(run(SAN_2023.raw(), SAN_2023.now), {"reference_values": reference(pcrs)}, now=SAN_2023.now)
    assert failed(decision) == ["reference_values"]
    assert decision.failed[0].actual == {f"nitro.pcrs.{index}": SAN_2023_PCRS[index]}
    assert decision.appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED


def test_debug_document_fails_a_production_reference_value() -> None:
    rules = {"reference_values": reference({"0": SAN_2023_PCRS["0"]}), "debug": "allowed"}
    decision = decide(run(DEBUG.raw(), DEBUG.now), rules, now=DEBUG.now)
    assert failed(decision) == ["reference_values"]


def test_pcr3_and_pcr4_constraints() -> None:
    pcrs = payload_of(NONDEBUG.raw())["pcrs"]
    appraisal = run(NONDEBUG.raw(), NONDEBUG.now)
    good = {"nitro.pcrs.3": [pcrs[3].hex()], "nitro.pcrs.4": [pcrs[4].hex()]}
    assert failed(decide(appraisal, {"claims": good}, now=NONDEBUG.now)) == []
    bad = decide(appraisal, {"claims": {"nitro.pcrs.3": ["11" * 48], "nitro.pcrs.4": ["22" * 48]}}, now=NONDEBUG.now)
    assert failed(bad) == ["claims.nitro.pcrs.3", "claims.nitro.pcrs.4"]
    assert bad.appraisal.trustworthiness_vector["configuration"] == ar4si.CONFIG_CONTRAINDICATED
    assert bad.status is EarStatus.CONTRAINDICATED


def test_freshness_is_the_default_policy_rule() -> None:
    assert default_policy("nitro").max_evidence_age_seconds == 300
    raw = NONDEBUG.raw()
    stale = decide(run(raw, NONDEBUG.now + timedelta(seconds=301)), None, now=NONDEBUG.now + timedelta(seconds=301))
    assert failed(stale) == ["max_evidence_age_seconds"] and stale.failed[0].actual == 301
    fresh = decide(run(raw, NONDEBUG.now + timedelta(seconds=299)), None, now=NONDEBUG.now + timedelta(seconds=299))
    assert failed(fresh) == []
    later = NONDEBUG.now + timedelta(seconds=3000)
    assert failed(decide(run(raw, later), {"max_evidence_age_seconds": 3600}, now=later)) == []
