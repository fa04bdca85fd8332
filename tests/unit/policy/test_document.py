"""The policy document: YAML/JSON parsing, JSON Schema validation with every problem listed (valid keys
named), CEL compiled at load, policy ids, the built-in defaults, and CONFIG_INVALID at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.policy import (
    PolicyDocumentError,
    default_policy,
    load_document,
    load_policy_set,
    policy_id,
    schema,
)
from attestation_broker.registry import default_registry

KINDS = sorted(default_registry())

GOOD_YAML = """
version: 1
policies:
  prod-web:
    description: SEV-SNP web tier
    kinds: [snp, azure-vtpm]
    rules:
      reference_values:
        - label: web-v1
          claims: {measurement: "AB01"}
      debug: forbidden
      min_tcb_status: SWHardeningNeeded
      tcb_recovery: {grace_days: 30, min_tcb_date: "2024-11-13", accepted_advisories: [INTEL-SA-00837]}
      nonce: required
      claims: {instance.vm_id: [VM-1]}
      max_evidence_age_seconds: 600
      conditions:
        - name: vmpl0
          expr: claims.snp.vmpl == 0
  tpm-fleet:
    kinds: [tpm]
    rules:
      ak_keys: [{label: host-a, sha256: "%s"}]
""" % ("ab" * 32)


def test_yaml_document_compiles() -> None:
    policies = load_document(GOOD_YAML, "good.yaml", KINDS)
    web = policies.for_kind("snp")
    assert policies.for_kind("azure-vtpm") is web and web.name == "prod-web"
    assert web.reference_values[0].claims == {"measurement": "ab01"}  # hex compared case-insensitively
    assert web.nonce_required and not web.debug_allowed and web.min_tcb_status == "SWHardeningNeeded"
    assert web.tcb_recovery is not None and web.tcb_recovery.grace_days == 30
    assert web.conditions[0].name == "vmpl0"
    assert policies.for_kind("tpm").ak_keys == {"ab" * 32: "host-a"}
    assert policies.for_kind("nitro").builtin and policies.for_kind("nitro").name == "nitro-default"


def test_json_is_accepted_too() -> None:
    doc = {"version": 1, "policies": {"p": {"kinds": ["tdx"], "rules": {"debug": "allowed"}}}}
    assert load_document(json.dumps(doc), "p.json", KINDS).for_kind("tdx").debug_allowed


def test_policy_id_is_name_and_content_digest() -> None:
    body: dict[str, Any] = {"kinds": ["snp"], "rules": {"debug": "forbidden"}}
    pid = policy_id("prod", body)
    name, _, digest = pid.partition("@sha256:")
    assert name == "prod" and len(digest) == 32 and int(digest, 16) >= 0
    assert policy_id("prod", {"rules": {"debug": "forbidden"}, "kinds": ["snp"]}) == pid  # key order irrelevant
    assert policy_id("prod", {"kinds": ["snp"], "rules": {"debug": "allowed"}}) != pid
    assert load_document(json.dumps({"version": 1, "policies": {"prod": body}}), "x").for_kind("snp").id == pid


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, ["(document): 'version' is a required property", "(document): 'policies' is a required property"]),
        ({"version": 1, "policies": {}}, ["policies: {} should be non-empty"]),
        (
            {"version": 1, "policies": {"p": {"kinds": ["snp"], "rules": {"measurements": ["ab"], "allow_debug": True}}}},
            ["policies.p.rules: unknown key(s) allow_debug, measurements; valid keys: ak_keys, claims, conditions, "
             "debug, max_evidence_age_seconds, min_tcb_status, nonce, reference_values, tcb_minimums, tcb_recovery"],
        ),
        (
            {"version": 1, "policies": {"p": {"kinds": ["snp"], "rules": {"debug": "maybe"}}}},
            ["policies.p.rules.debug: 'maybe' is not one of forbidden, allowed"],
        ),
        (
            {"version": 1, "policies": {"p": {"kinds": ["snp"], "rules": {}, "id": "x"}}},
            ["policies.p: unknown key(s) id; valid keys: description, kinds, rules"],
        ),
        (
            {"version": 1, "policies": {"a": {"kinds": ["snp"], "rules": {}}, "b": {"kinds": ["snp", "sgx"], "rules": {}}}},
            ["policies.b.kinds: snp is already covered by policy a",
             f"policies.b.kinds: unknown evidence kind 'sgx'; valid: {', '.join(KINDS)}"],
        ),
        (
            {"version": 1, "policies": {"p": {"kinds": ["snp"], "rules": {"conditions": [
                {"name": "bad", "expr": "claims.("}, {"name": "int", "expr": "1 + 1"}]}}}},
            ["policies.p.rules.conditions[0] (bad): ERROR: <input>:1:8: Syntax error: no viable alternative at input '.('",
             "policies.p.rules.conditions[1] (int): condition must evaluate to a bool, not int"],
        ),
    ],
)  # fmt: skip
def test_every_problem_is_listed(doc: dict[str, Any], expected: list[str]) -> None:
    with pytest.raises(PolicyDocumentError) as exc:
        load_document(json.dumps(doc), "bad.json", KINDS)
    assert [p.split("\n")[0] for p in exc.value.problems] == expected


def test_not_yaml_names_the_position() -> None:
    with pytest.raises(PolicyDocumentError) as exc:
        load_document("version: 1\npolicies: [unclosed\n", "broken.yaml")
    assert exc.value.problems[0].startswith("not YAML or JSON at line 3")


def test_load_policy_set_is_config_invalid(tmp_path: Path) -> None:
    assert load_policy_set("").by_kind == {}
    with pytest.raises(BrokerError) as exc:
        load_policy_set(str(tmp_path / "missing.yaml"))
    assert exc.value.code.name == "CONFIG_INVALID" and "unreadable" in exc.value.detail
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\npolicies:\n  p: {kinds: [snp], rules: {allow_debug: true}}\n")
    with pytest.raises(BrokerError) as exc:
        load_policy_set(str(bad), KINDS)
    assert exc.value.code.name == "CONFIG_INVALID" and exc.value.status == 500
    assert "unknown key(s) allow_debug; valid keys: ak_keys" in exc.value.detail


@pytest.mark.parametrize("kind", [*KINDS, "some-future-kind"])
def test_builtin_defaults_load_and_validate(kind: str) -> None:
    policy = default_policy(kind)
    assert policy.name == f"{kind}-default" and policy.kinds == (kind,) and not policy.debug_allowed


def test_the_published_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_schema_tcb_statuses_follow_the_vocabulary() -> None:
    from attestation_broker.appraisal import TCB_STATUSES

    # Revoked can never be a minimum: a revoked TCB is contraindicated whatever the policy says.
    assert schema()["$defs"]["tcbStatus"]["enum"] == [s for s in TCB_STATUSES if s != "Revoked"]
