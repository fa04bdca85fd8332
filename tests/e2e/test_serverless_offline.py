"""End to end on the real serverless.yml: serverless-offline (HTTP API emulation) + moto server (KMS,
DynamoDB, S3) + a replay server standing in for AMD KDS. No AWS account, loopback only.

serverless-offline runs with ``--reloadHandler``: every request starts a fresh Python process, i.e. a
cold Lambda instance with an empty memory cache, so anything a later request sees from an earlier one
came through DynamoDB or S3. Flow:

1. challenge → nonce; attest a real SNP report with that nonce → 403 (AMD's CRL fetched for it is past
   its nextUpdate) but the nonce is spent in DynamoDB; the same nonce again → NONCE_REPLAYED;
2. the first attest fetched the VCEK and AMD's CRL from the "vendor" and wrote them to S3; the vendor
   then goes down; a new instance attests the same report → ES256 token signed by KMS, with both
   collateral objects served from S3 (the CRL as a stale copy within the configured grace: the real
   CRL's nextUpdate, 2026-05-12, has passed and AMD cannot be asked for a newer one here);
3. the token verifies with PyJWT against the served JWKS, and through POST /v1/verify.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.aws.clients import make_client
from attestation_broker.trust.cache import CachedObject, CollateralCache

from tests.support.proc import free_port
from tests.support.replay import ReplayServer, replay_server
from tests.support.vectors import vector

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SLS = ROOT / "node_modules" / ".bin" / "serverless"
REPORT = vector("snp/trustee-milan-v2/test-report.bin")
VCEK = vector("snp/trustee-milan-v2/test-vcek.der")
MILAN_CRL = vector("roots/amd/amd_milan_vcek_crl.pem")
CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _vcek_target() -> str:
    from attestation_broker.evidence.snp.abi import TcbVersion, parse_report
    from attestation_broker.evidence.snp.kds import vcek_url

    report = parse_report(REPORT)
    return vcek_url("", "Milan", report.chip_id, TcbVersion.decode(report.reported_tcb_raw, "Milan"))


def http(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    from tests.support.moto_kms import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def kds() -> Iterator[ReplayServer]:
    with replay_server() as server:
        yield server


@pytest.fixture(scope="module")
def aws(moto: str) -> dict[str, str]:
    """The stack's resources, created in moto the way infra/broker.yml declares them."""
    suffix = uuid.uuid4().hex[:8]
    kms = make_client("kms", endpoint_url=moto, **CREDENTIALS)
    key_arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    rsa_key_arn = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    dynamodb = make_client("dynamodb", endpoint_url=moto, **CREDENTIALS)
    table = f"ledger-{suffix}"
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = make_client("s3", endpoint_url=moto, **CREDENTIALS)
    bucket = f"cache-{suffix}"
    s3.create_bucket(Bucket=bucket)
    return {"key_arn": key_arn, "rsa_key_arn": rsa_key_arn, "table": table, "bucket": bucket}


@pytest.fixture(scope="module")
def offline(
    moto: str, kds: ReplayServer, aws: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if not SLS.exists() or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("node_modules missing in CI: `make test` runs `npm ci`")
        pytest.skip("node_modules missing: run `npm ci` (serverless-offline)")
    http_port, lambda_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    venv = ROOT / ".venv"
    params = {
        "signer": f"kms:{aws['key_arn']}",
        "signerRs256": f"kms:{aws['rsa_key_arn']}",
        "federationAudiences": "api://AzureADTokenExchange",
        "ledger": f"dynamodb:{aws['table']}",
        "cache": f"s3:{aws['bucket']}",
        "nonceSecret": os.urandom(32).hex(),
        "issuer": base,
        "amdKdsUrl": kds.base_url,
        "requireNonce": "false",
        "runtime": "python3.11",  # serverless-offline@13's newest python; the venv's python3 runs the handlers
    }
    env = {
        **os.environ,
        # serverless-offline spawns `python3` for python3.12 handlers: the project venv must come first.
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        # A stale copy may be served for 3 years while the vendor is down (the vectors are old).
        "BROKER_COLLATERAL_STALE_GRACE_SECONDS": str(3 * 365 * 86400),
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "SLS_DEPRECATION_DISABLE": "*",
        "SLS_INTERACTIVE_SETUP_DISABLE": "1",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    work = tmp_path_factory.mktemp("offline")
    log_path = work / "serverless-offline.log"
    # serverless-offline unpacks `package.artifact` for each function but imports handlers from the
    # service directory (the working tree, which is what we test). A stand-in artifact keeps the test
    # independent of build/lambda.zip (arm64 wheels that could not load here anyway).
    artifact = work / "artifact.zip"
    with zipfile.ZipFile(artifact, "w") as archive:
        archive.writestr("README", "stand-in: serverless-offline runs the working tree")
    params["artifact"] = str(artifact)
    scratch = ROOT / ".serverless-offline"
    scratch_existed = scratch.exists()
    command = [
        str(SLS),
        "offline",
        "start",
        "--stage",
        "e2e",
        "--region",
        "us-east-1",
        "--host",
        "127.0.0.1",
        "--httpPort",
        str(http_port),
        "--lambdaPort",
        str(lambda_port),
        "--reloadHandler",
        "--noTimeout",
        *[f"--param={k}={v}" for k, v in params.items()],
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serverless offline exited: {log_path.read_text()[-3000:]}")
            try:
                status, _ = http(base, "GET", "/healthz")
                if status == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serverless offline not ready: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if not scratch_existed:
            shutil.rmtree(scratch, ignore_errors=True)


def _envelope(nonce: str | None = None) -> dict[str, Any]:
    # A v2 report carries no CPUID: the product line is named in the envelope, so the VCEK is fetched.
    body: dict[str, Any] = {"evidence": base64.b64encode(REPORT).decode(), "product": "Milan"}
    if nonce is not None:
        body["nonce"] = nonce
    return body


def _s3_object(moto: str, bucket: str, url: str) -> CachedObject | None:
    s3 = make_client("s3", endpoint_url=moto, **CREDENTIALS)
    try:
        data = s3.get_object(Bucket=bucket, Key=CollateralCache.key(url))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return CachedObject.decode(data, "store")


def test_attest_on_serverless_offline_with_moto(
    offline: str, moto: str, kds: ReplayServer, aws: dict[str, str]
) -> None:
    base = offline
    vcek_target = _vcek_target()
    kds.add(vcek_target, VCEK)
    kds.add("/vcek/v1/Milan/crl", MILAN_CRL)

    # Discovery and keys come from KMS (public key via GetPublicKey).
    status, discovery = http(base, "GET", "/.well-known/openid-configuration")
    assert status == 200, discovery
    assert discovery.get("issuer") == base, discovery
    assert discovery["jwks_uri"] == base + "/jwks"
    status, jwks = http(base, "GET", "/jwks")
    assert status == 200 and [k["alg"] for k in jwks["keys"]] == ["ES256", "RS256"]
    status, schema = http(base, "GET", "/v1/schema")
    assert status == 200 and "ear_status" in schema["properties"]

    # 1. A nonce is single-use across instances: the DynamoDB ledger remembers it.
    status, challenge = http(base, "POST", "/v1/challenge")
    assert status == 200 and len(challenge["nonce"]) == 114
    status, problem = http(base, "POST", "/v1/attest/snp", _envelope(challenge["nonce"]))
    # The nonce is spent before verification; this report then fails on the vendor's CRL, whose
    # nextUpdate has passed (a fresh fetch of stale collateral is refused, not passed).
    assert status == 403 and problem["code"] == "COLLATERAL_EXPIRED", problem
    status, problem = http(base, "POST", "/v1/attest/snp", _envelope(challenge["nonce"]))
    assert status == 403 and problem["code"] == "NONCE_REPLAYED", problem
    dynamodb = make_client("dynamodb", endpoint_url=moto, **CREDENTIALS)
    assert dynamodb.scan(TableName=aws["table"])["Count"] == 1

    # 2. The first instance fetched the VCEK and CRL from the vendor and wrote both to S3.
    vcek_url, crl_url = kds.base_url + vcek_target, kds.base_url + "/vcek/v1/Milan/crl"
    stored_vcek, stored_crl = _s3_object(moto, aws["bucket"], vcek_url), _s3_object(moto, aws["bucket"], crl_url)
    assert stored_vcek is not None and stored_vcek.body == VCEK and stored_vcek.collateral_type == "vcek"
    assert stored_crl is not None and stored_crl.body == MILAN_CRL and stored_crl.collateral_type == "crl"
    assert kds.requests.count(vcek_target) == 1

    # The vendor goes down; a fresh instance is served from S3 and a KMS-signed token comes back.
    kds.add(vcek_target, b"down", status=503)
    kds.add("/vcek/v1/Milan/crl", b"down", status=503)
    status, result = http(base, "POST", "/v1/attest/snp", _envelope())
    assert status == 200, result
    token = result["token"]
    collateral = {c["type"]: c for c in result["claims"]["submods"]["snp"]["ear_verifier_claims"]["collateral"]}
    assert collateral["vcek"]["source"] == "store" and collateral["crl"]["source"] == "store"
    assert collateral["crl"]["stale"] is True
    assert kds.requests.count(vcek_target) == 1  # never fetched from the vendor again

    # 3. The relying party's view: JWKS → PyJWT, and the broker's own verify route.
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256" and header["kid"] == jwks["keys"][0]["kid"]
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(token, key=key, algorithms=["ES256"], audience="attestation-broker", issuer=base)
    assert claims["submods"]["snp"]["ear_attester_claims"]["tee"] == "sev-snp"
    assert claims["ear_status"] in ("affirming", "warning")
    status, verified = http(base, "POST", "/v1/verify", {"token": token})
    assert status == 200 and verified["valid"] is True and verified["claims"]["jti"] == claims["jti"], verified
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    status, problem = http(base, "POST", "/v1/verify", {"token": tampered})
    assert status == 403 and problem["code"] == "TOKEN_INVALID"

    # 4. Token exchange (RFC 8693) on the token function: an RS256 federation token signed by the KMS RSA key.
    form = urllib.parse.urlencode(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "audience": "api://AzureADTokenExchange",
        }
    ).encode()
    request = urllib.request.Request(
        base + "/v1/token", data=form, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        exchanged = json.loads(response.read())
    federation = exchanged["access_token"]
    assert jwt.get_unverified_header(federation)["alg"] == "RS256"
    rsa_key = jwt.PyJWK(jwks["keys"][1]).key
    federated = jwt.decode(federation, key=rsa_key, algorithms=["RS256"], audience="api://AzureADTokenExchange")
    assert federated["iss"] == base and federated["ear_status"] == claims["ear_status"]
