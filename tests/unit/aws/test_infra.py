"""Infrastructure as code: cfn-lint on infra/, the security properties of the resources, and the
CloudFormation that `serverless package` compiles from serverless.yml (no AWS account, no network)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[3]
INFRA = sorted((ROOT / "infra").glob("*.yml"))
SLS = ROOT / "node_modules" / ".bin" / "serverless"
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

ROUTES = {
    ("POST", "/v1/challenge"): "challenge",
    ("POST", "/v1/attest/{kind}"): "attest",
    ("POST", "/v1/verify"): "verify",
    ("POST", "/v1/token"): "token",
    ("GET", "/v1/schema"): "keys",
    ("GET", "/jwks"): "keys",
    ("GET", "/.well-known/openid-configuration"): "keys",
    ("GET", "/healthz"): "health",
}


def _template(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    assert not matches and template is not None, matches
    return dict(template)


@pytest.fixture(scope="module")
def broker() -> dict[str, Any]:
    return _template(ROOT / "infra" / "broker.yml")


@pytest.mark.parametrize("path", INFRA, ids=lambda p: p.name)
def test_cfn_lint_passes_including_informational_checks(path: Path) -> None:
    result = subprocess.run(
        [str(CFN_LINT), "--include-checks", "I", "--", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("logical", "spec", "algorithm"),
    [("SigningKey", "ECC_NIST_P256", "ECDSA_SHA_256"), ("RsaSigningKey", "RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256")],
)
def test_kms_keys_and_only_issuing_roles_sign(broker: dict[str, Any], logical: str, spec: str, algorithm: str) -> None:
    key = broker["Resources"][logical]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == (spec, "SIGN_VERIFY")
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    deny = statements["OnlyIssuingRolesSign"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "kms:Sign"
    issuing = [{"Fn::GetAtt": ["AttestRole", "Arn"]}, {"Fn::GetAtt": ["TokenRole", "Arn"]}]
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == issuing
    assert statements["IssuingRolesSign"]["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": algorithm}}


def test_ledger_table_on_demand_with_ttl(broker: dict[str, Any]) -> None:
    table = broker["Resources"]["LedgerTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}]
    from attestation_broker.aws.ledger import TTL_ATTRIBUTE

    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def test_cache_bucket_private_encrypted_tls_only(broker: dict[str, Any]) -> None:
    bucket = broker["Resources"]["CacheBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in ("AES256", "aws:kms")
    (statement,) = broker["Resources"]["CacheBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _grants(broker: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """role → {(action, resource logical id)} from every IAM policy attached to it (logs excluded)."""
    grants: dict[str, set[tuple[str, str]]] = {}
    for resource in broker["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        props = resource["Properties"]
        for role in props["Roles"]:
            for statement in props["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                target = json.dumps(statement["Resource"], sort_keys=True)
                assert "*" not in target.replace("/collateral/*", ""), f"wildcard resource in {target}"
                for action in actions:
                    grants.setdefault(role["Ref"], set()).add((action, target))
    return grants


def test_each_function_role_has_only_what_its_function_needs(broker: dict[str, Any]) -> None:
    key = json.dumps({"Fn::GetAtt": ["SigningKey", "Arn"]}, sort_keys=True)
    rsa = json.dumps({"Fn::GetAtt": ["RsaSigningKey", "Arn"]}, sort_keys=True)
    table = json.dumps({"Fn::GetAtt": ["LedgerTable", "Arn"]}, sort_keys=True)
    objects = json.dumps({"Fn::Sub": "${CacheBucket.Arn}/collateral/*"}, sort_keys=True)
    bucket = json.dumps({"Fn::GetAtt": ["CacheBucket", "Arn"]}, sort_keys=True)
    assert _grants(broker) == {
        "AttestRole": {
            ("kms:Sign", key),
            ("kms:GetPublicKey", key),
            ("kms:Sign", rsa),
            ("kms:GetPublicKey", rsa),
            ("dynamodb:PutItem", table),
            ("s3:GetObject", objects),
            ("s3:PutObject", objects),
            ("s3:ListBucket", bucket),
        },
        "TokenRole": {("kms:Sign", key), ("kms:GetPublicKey", key), ("kms:Sign", rsa), ("kms:GetPublicKey", rsa)},
        "VerifyRole": {("kms:GetPublicKey", key), ("kms:GetPublicKey", rsa)},
        "KeysRole": {("kms:GetPublicKey", key), ("kms:GetPublicKey", rsa)},
        "RefreshRole": {("s3:GetObject", objects), ("s3:PutObject", objects), ("s3:ListBucket", bucket)},
    }
    for name in ("ChallengeRole", "AttestRole", "VerifyRole", "TokenRole", "KeysRole", "HealthRole", "RefreshRole"):
        (inline,) = broker["Resources"][name]["Properties"]["Policies"]
        (statement,) = inline["PolicyDocument"]["Statement"]
        assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
        function = name.removesuffix("Role").lower()
        assert statement["Resource"]["Fn::Sub"].endswith(f":log-group:/aws/lambda/${{AWS::StackName}}-{function}:*")


# --------------------------------------------------------------------------- serverless package


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`serverless package` on the real serverless.yml with dummy credentials and a stand-in artifact."""
    if not SLS.exists() or shutil.which("node") is None:
        pytest.skip("node_modules missing: run `npm ci`")
    work = tmp_path_factory.mktemp("sls")
    artifact = work / "lambda.zip"
    with zipfile.ZipFile(artifact, "w") as archive:
        archive.writestr("functions/__init__.py", "")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "dummy",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "SLS_DEPRECATION_DISABLE": "*",
    }
    out = work / "out"
    command = [str(SLS), "package", "--stage", "ci", "--region", "eu-west-1", "--package", str(out)]
    result = subprocess.run(
        [*command, f"--param=artifact={artifact}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr
    path = out / "cloudformation-template-update-stack.json"
    yield {"path": path, "template": json.loads(path.read_text())}


def test_compiled_stack_passes_cfn_lint(compiled: dict[str, Any]) -> None:
    # W3005 (redundant DependsOn) is in the Framework's own generated resources, not ours.
    result = subprocess.run(
        [str(CFN_LINT), "--ignore-checks", "W3005", "--", str(compiled["path"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_compiled_functions_routes_roles_and_schedule(compiled: dict[str, Any]) -> None:
    resources = compiled["template"]["Resources"]
    functions = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::Lambda::Function"}
    assert sorted(functions) == sorted(
        f"{n.capitalize()}LambdaFunction"
        for n in ("challenge", "attest", "verify", "token", "keys", "health", "refresh")
    )
    roles = set()
    for logical, props in functions.items():
        name = logical.removesuffix("LambdaFunction")
        assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
        assert props["Handler"] == f"functions/{name.lower()}.handler"
        assert props["Role"] == {"Fn::GetAtt": [f"{name}Role", "Arn"]}
        roles.add(props["Role"]["Fn::GetAtt"][0])
        env = props["Environment"]["Variables"]
        assert env["BROKER_SIGNER"] == {"Fn::Join": ["", ["kms:", {"Fn::GetAtt": ["SigningKey", "Arn"]}]]}
        assert env["BROKER_LEDGER"] == {"Fn::Join": ["", ["dynamodb:", {"Ref": "LedgerTable"}]]}
        assert env["BROKER_CACHE"] == {"Fn::Join": ["", ["s3:", {"Ref": "CacheBucket"}]]}
        assert env["BROKER_SIGNER_RS256"] == {"Fn::Join": ["", ["kms:", {"Fn::GetAtt": ["RsaSigningKey", "Arn"]}]]}
        # Token exchange is off until the operator allows audiences (docs/federation.md).
        assert env["BROKER_FEDERATION_AUDIENCES"] == "" and env["BROKER_FEDERATION_CONFIG"] == ""
        # No retired KMS key until the operator rotates (docs/deploy.md "Rotating the KMS signing keys").
        assert env["BROKER_RETIRED_SIGNERS"] == "" and env["BROKER_RETIRED_SIGNERS_RS256"] == ""
        assert "{{resolve:secretsmanager:${NonceSecret}" in env["BROKER_NONCE_SECRET"]["Fn::Sub"]
    assert len(roles) == 7 and "IamRoleLambdaExecution" not in resources  # no shared role

    routes = {}
    for props in (v["Properties"] for v in resources.values() if v["Type"] == "AWS::ApiGatewayV2::Route"):
        method, path = props["RouteKey"].split(" ", 1)
        integration = props["Target"]["Fn::Join"][1][1]["Ref"]
        routes[(method, path)] = integration.removeprefix("HttpApiIntegration").lower()
    assert routes == ROUTES

    (rule,) = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Events::Rule"]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["RefreshLambdaFunction", "Arn"]}

    groups = [v["Properties"] for v in resources.values() if v["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 7 and {g["RetentionInDays"] for g in groups} == {30}
