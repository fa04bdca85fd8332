"""End to end: real SEV-SNP evidence → EAR token from `attestation-broker serve` → POST /v1/token for AWS,
Google and Microsoft Entra audiences → `attestation-broker federate aws|gcp|azure` gets credentials from each
cloud's loopback stand-in (moto STS; Google STS + IAM Credentials and Entra over HTTPS with a test CA), which
fetch the broker's /jwks over HTTP and check the tokens the way the clouds document. The broker clock is pinned
to the vector's time; the stand-ins judge the tokens as of that time too."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.federation import exchange

from tests.e2e.test_serve import call
from tests.support.cloud_standins import LoopbackCA, entra, google
from tests.support.federation import AUDIENCES, AWS_AUDIENCE, AZURE_AUDIENCE, GCP_AUDIENCE
from tests.support.proc import free_port, wait_http
from tests.support.replay import replay_server
from tests.support.vectors import vector

pytestmark = pytest.mark.e2e

REPORT = "snp/trustee-milan-v2/test-report.bin"
VCEK = "snp/trustee-milan-v2/test-vcek.der"
FIXED = "2025-06-01T00:00:00Z"
PROVIDER = GCP_AUDIENCE.removeprefix("https://iam.googleapis.com/")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0c4e5f2a-7f0e-4b8e-9b9b-2f6d1c0a1b2c"
CLI = str(Path(sys.executable).parent / "attestation-broker")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with replay_server({"/vcek/v1/Milan/crl": vector("roots/amd/amd_milan_vcek_crl.pem")}) as kds:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "BROKER_FIXED_TIME": FIXED,
            "BROKER_AMD_KDS_URL": kds.base_url,
            "BROKER_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            "BROKER_ISSUER": base,
            "BROKER_FEDERATION_AUDIENCES": ",".join(AUDIENCES),
        }
        proc = subprocess.Popen(
            [CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_http(base + "/healthz")
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def ear(broker: str) -> dict[str, Any]:
    body = json.dumps(
        {
            "evidence": base64.b64encode(vector(REPORT)).decode(),
            "extras": [base64.b64encode(vector(VCEK)).decode()],
        }
    ).encode()
    status, _, doc = call(broker, "POST", "/v1/attest/snp", body)
    assert status == 200, doc
    assert doc["claims"]["ear_status"] in ("affirming", "warning")
    return dict(doc)


def jwks_of(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/jwks", timeout=10) as response:
        doc: dict[str, Any] = json.loads(response.read())
        return doc


def test_exchange_over_http_for_each_cloud(broker: str, ear: dict[str, Any]) -> None:
    jwks = jwt.PyJWKSet.from_dict(jwks_of(broker))
    for audience, alg in ((AWS_AUDIENCE, "ES256"), (GCP_AUDIENCE, "ES256"), (AZURE_AUDIENCE, "RS256")):
        token = exchange(broker, ear["token"], audience)
        assert len(token.access_token) < 2048 < len(ear["token"])
        header = jwt.get_unverified_header(token.access_token)
        assert header["alg"] == alg
        claims = jwt.decode(
            token.access_token,
            jwks[header["kid"]].key,
            algorithms=[alg],
            audience=audience,
            issuer=broker,
        )
        assert claims["tee"] == "sev-snp" and claims["measurement"].startswith("a1f39304")
        assert "submods" not in claims


def test_attest_call_returns_the_federation_token_in_one_round_trip(broker: str) -> None:
    body = json.dumps(
        {
            "evidence": base64.b64encode(vector(REPORT)).decode(),
            "extras": [base64.b64encode(vector(VCEK)).decode()],
            "audience": AZURE_AUDIENCE,
        }
    ).encode()
    status, _, doc = call(broker, "POST", "/v1/attest/snp", body)
    assert status == 200, doc
    assert jwt.get_unverified_header(doc["federation_token"])["alg"] == "RS256"
    assert doc["federation_claims"]["aud"] == AZURE_AUDIENCE


def _federate(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [CLI, "federate", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


@pytest.fixture(scope="module")
def subject_file(ear: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ear") / "token.jwt"
    path.write_text(ear["token"])
    return str(path)


def test_cli_aws_credential_process_against_moto_sts(broker: str, subject_file: str) -> None:
    from tests.support.moto_kms import moto_server

    aws_env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    with moto_server() as sts:
        doc = _federate(
            "aws",
            "--broker",
            broker,
            "--subject-token",
            subject_file,
            "--role-arn",
            "arn:aws:iam::123456789012:role/attested-workload",
            "--sts-endpoint",
            sts,
            "--credential-process",
            env=aws_env,
        )
    assert set(doc) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert doc["Version"] == 1 and doc["AccessKeyId"].startswith("ASIA")


def test_cli_gcp_against_google_sts_stand_in(broker: str, subject_file: str, tmp_path: Path) -> None:
    ca = LoopbackCA.create(tmp_path / "ca")
    with google(ca, provider=PROVIDER, issuer=broker, jwks=lambda: jwks_of(broker), clock=time.time) as sts:
        doc = _federate(
            "gcp",
            "--broker",
            broker,
            "--subject-token",
            subject_file,
            "--provider",
            PROVIDER,
            "--service-account",
            "workload@proj.iam.gserviceaccount.com",
            "--token-url",
            sts.server.base_url + "/v1/token",
            "--iam-credentials-url",
            sts.server.base_url,
            env={"REQUESTS_CA_BUNDLE": str(ca.ca_pem)},
        )
        assert doc["access_token"] == "sa-access-token"
        first, second = sts.server.requests
        assert first.form["audience"] == "//iam.googleapis.com/" + PROVIDER
        assert first.form["subject_token_type"] == "urn:ietf:params:oauth:token-type:jwt"
        assert jwt.decode(first.form["subject_token"], options={"verify_signature": False})["aud"] == GCP_AUDIENCE
        assert second.headers["authorization"] == "Bearer google-federated-0"


def test_cli_azure_against_entra_stand_in(broker: str, subject_file: str, ear: dict[str, Any], tmp_path: Path) -> None:
    ca = LoopbackCA.create(tmp_path / "ca")
    policy = ear["claims"]["submods"]["snp"]["ear_appraisal_policy_ids"][0]
    subject = policy.rpartition("@sha256:")[0] or policy
    with entra(
        ca,
        tenant=TENANT,
        client_id=CLIENT_ID,
        issuer=broker,
        subject=subject,
        jwks=lambda: jwks_of(broker),
        clock=time.time,
    ) as stand_in:
        doc = _federate(
            "azure",
            "--broker",
            broker,
            "--subject-token",
            subject_file,
            "--tenant-id",
            TENANT,
            "--client-id",
            CLIENT_ID,
            "--authority",
            stand_in.server.base_url.removeprefix("https://"),
            env={"REQUESTS_CA_BUNDLE": str(ca.ca_pem)},
        )
        assert doc["access_token"] == "entra-access-0"
        [post] = [r for r in stand_in.server.requests if r.method == "POST"]
        assert post.form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        assertion = post.form["client_assertion"]
        assert jwt.get_unverified_header(assertion)["alg"] == "RS256"
        assert jwt.decode(assertion, options={"verify_signature": False})["sub"] == subject


def test_cli_reports_a_refused_exchange_on_stderr(broker: str, subject_file: str) -> None:
    result = subprocess.run(
        [
            CLI,
            "federate",
            "aws",
            "--broker",
            broker,
            "--subject-token",
            subject_file,
            "--audience",
            "https://not-allowed.example",
            "--role-arn",
            "arn:aws:iam::123456789012:role/x",
            "--credential-process",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "FEDERATE_EXCHANGE_REFUSED" and error["detail"].startswith("invalid_target")
