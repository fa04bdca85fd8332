"""``attestation-broker policy init | check | test`` and ``verify --policy`` on real SEV-SNP reports: init on
one report → verify affirming (exit 0, token); a different real report → POLICY_REJECTED, exit 1, the failed
rule named, no token; a broken document → exit 2 with every problem and the valid keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.vectors import vector_path

CLI = str(Path(sys.executable).parent / "attestation-broker")
CRL = "roots/amd/amd_milan_vcek_crl.pem"
GOLDEN = ("snp/trustee-milan-v2/test-report.bin", "snp/trustee-milan-v2/test-vcek.der")
OTHER = ("snp/trustee-aws-vlek-milan-v3/test-vlek-report.bin", "snp/trustee-aws-vlek-milan-v3/test-vlek.der")
WHEN = ("--now", "2025-06-01T00:00:00Z", "--offline")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)


def evidence(pair: tuple[str, str]) -> list[str]:
    return [str(vector_path(pair[0])), str(vector_path(pair[1])), str(vector_path(CRL))]


def test_init_then_verify_affirms_and_another_report_is_refused(tmp_path: Path) -> None:
    init = cli("policy", "init", "snp", *evidence(GOLDEN), *WHEN, "--name", "prod-web")
    assert init.returncode == 0, init.stderr
    policy = tmp_path / "policy.yaml"
    policy.write_text(init.stdout)
    assert "measurement: a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f" in (
        init.stdout
    )

    check = cli("policy", "check", str(policy))
    assert check.returncode == 0 and json.loads(check.stdout)["kinds"] == {"snp": "prod-web"}
    pid = json.loads(check.stdout)["policies"]["prod-web"]

    ok = cli("verify", "snp", *evidence(GOLDEN), *WHEN, "--policy", str(policy))
    doc = json.loads(ok.stdout)
    assert ok.returncode == 0 and doc["ear_status"] == "affirming" and "token" not in doc  # only with --sign
    submod = doc["claims"]["submods"]["snp"]
    assert submod["ear_appraisal_policy_ids"] == [pid]
    assert submod["ear_trustworthiness_vector"]["executables"] == 3

    refused = cli("verify", "snp", *evidence(OTHER), *WHEN, "--policy", str(policy))
    doc = json.loads(refused.stdout)
    assert refused.returncode == 1 and "token" not in doc
    assert doc["error"]["code"] == "POLICY_REJECTED"
    assert [r["rule"] for r in doc["error"]["failed_rules"]] == ["reference_values"]
    assert doc["error"]["failed_rules"][0]["policy"] == "prod-web"
    assert doc["appraisal"]["submods"]["snp"]["ear_appraisal_policy_ids"] == [pid]
    assert "jti" not in doc["appraisal"] and doc["ear_status"] == "contraindicated"

    dry = cli("policy", "test", str(policy), "snp", *evidence(OTHER), *WHEN)
    report = json.loads(dry.stdout)
    assert dry.returncode == 1 and report["decision"] == "POLICY_REJECTED"
    assert [(r["rule"], r["passed"]) for r in report["rules"]][:2] == [("reference_values", False), ("debug", True)]
    assert cli("policy", "test", str(policy), "snp", *evidence(GOLDEN), *WHEN).returncode == 0


def test_default_policy_refuses_a_debug_guest_without_a_token() -> None:
    debug = ("snp/go-sev-guest-milan-v2/attestation.bin", "snp/go-sev-guest-milan-v2/vcek.testcer")
    out = cli("verify", "snp", *evidence(debug), *WHEN)
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and "token" not in doc and doc["error"]["code"] == "POLICY_REJECTED"
    rules = {r["rule"]: r for r in doc["error"]["failed_rules"]}
    assert set(rules) == {"debug", "trustworthiness"} and rules["debug"]["actual"] == "enabled"
    assert rules["debug"]["policy"] == "snp-default"


def test_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\npolicies:\n  web:\n    kinds: [snp, sgx]\n    rules:\n      measurements: [ab]\n"
        "      debug: sometimes\n      conditions: [{name: c, expr: 'claims.('}]\n"
    )
    out = cli("policy", "check", str(bad))
    doc = json.loads(out.stdout)
    assert out.returncode == 2 and doc["valid"] is False
    problems = "\n".join(doc["problems"])
    assert "policies.web.rules: unknown key(s) measurements; valid keys: ak_keys, claims, conditions" in problems
    assert "policies.web.rules.debug: 'sometimes' is not one of forbidden, allowed" in problems
    assert "policies.web.kinds: unknown evidence kind 'sgx'" in problems
    refused = cli("verify", "snp", *evidence(GOLDEN), *WHEN, "--policy", str(bad))
    assert refused.returncode == 2 and json.loads(refused.stdout)["error"]["code"] == "CONFIG_INVALID"
