"""infra/federation-aws.yml: the relying-party role trusts only the broker's OIDC provider, the allowed sub,
and the session tags the broker's AWS audience profile actually emits (sts:TagSession allowed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from attestation_broker.token.federation import DEFAULT_TAGS, default_rule
from cfnlint.decode import decode

from tests.support.federation import AWS_AUDIENCE

TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "federation-aws.yml"


def _trust_policy(statuses: str) -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None
    body, variables = template["Resources"]["AttestedWorkloadRole"]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
    assert "Fn::If" in variables["Statuses"]
    values = {
        "BrokerOidcProvider": "arn:aws:iam::123456789012:oidc-provider/attest.example.com",
        "BrokerIssuerHost": "attest.example.com",
        "Audience": template["Parameters"]["Audience"]["Default"],
        "AllowedSubject": "snp-prod",
        "AllowedTee": "sev-snp",
        "Statuses": statuses,
    }
    doc: dict[str, Any] = json.loads(re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], body))
    return doc


@pytest.mark.parametrize("statuses", ['"affirming"', '["affirming", "warning"]'])
def test_trust_policy_checks_aud_sub_and_session_tags(statuses: str) -> None:
    [statement] = _trust_policy(statuses)["Statement"]
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]
    condition = statement["Condition"]["StringEquals"]
    assert condition["attest.example.com:aud"] == AWS_AUDIENCE
    assert condition["attest.example.com:sub"] == "snp-prod"
    tag_keys = {k.removeprefix("aws:RequestTag/") for k in condition if k.startswith("aws:RequestTag/")}
    # Every tag the role requires is one the broker puts in tokens for the AWS audience by default.
    assert tag_keys == {"tee", "ear_status"} and tag_keys <= set(default_rule(AWS_AUDIENCE).tags) == set(DEFAULT_TAGS)
    assert condition["aws:RequestTag/ear_status"] == json.loads(statuses)


DOCS = Path(__file__).resolve().parents[3] / "docs" / "federation.md"


def test_docs_use_one_issuer_string_everywhere_a_cloud_pins_it() -> None:
    text = DOCS.read_text()
    issuers = set(
        re.findall(r'(?:--issuer-uri=|--issuer |--url |"issuer": |ISSUER=|--broker )"?(https://[^"\s,]+)', text)
    )
    assert issuers == {"https://attest.example.com"}
    host = "attest.example.com"
    assert f'"{host}:aud": "sts.amazonaws.com"' in text and f'"{host}:sub"' in text
    assert f"oidc-provider/{host}" in text


def test_docs_name_every_federation_code_and_config_key() -> None:
    import attestation_broker.federation.errors  # noqa: F401
    from attestation_broker.errors import CATALOGUE
    from attestation_broker.token import federation

    text = DOCS.read_text()
    codes = [name for name in CATALOGUE if name.startswith(("FEDERATION_", "FEDERATE_"))]
    assert len(codes) >= 10 and all(f"`{code}`" in text for code in codes)
    for key in ("cloud", "algorithm", "sub", "ttl_seconds", "tags", "transitive_tags", *federation.FIELDS):
        assert f"`{key}`" in text, key
    for env in ("BROKER_FEDERATION_AUDIENCES", "BROKER_FEDERATION_CONFIG", "BROKER_SIGNER_RS256"):
        assert env in text
