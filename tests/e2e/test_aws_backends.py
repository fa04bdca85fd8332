"""The broker on its AWS backends, all on a loopback moto server: tokens signed by KMS verify with PyJWT
against the served /jwks, nonces are single-use through DynamoDB, and collateral lands in S3."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime

import jwt
import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.api.routes import Api
from attestation_broker.audit.sinks import MemorySink
from attestation_broker.binding import ExpectedBinding
from attestation_broker.bootstrap import build_broker
from attestation_broker.config import Settings
from attestation_broker.registry import Registry, default_registry

from tests.support.broker import EchoTestVerifier
from tests.support.replay import ReplayServer, replay_server
from tests.support.vectors import vector

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    from tests.support.moto_kms import moto_server

    with moto_server() as url:
        yield url


@pytest.fixture
def aws(moto: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": moto,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    kms = boto3.client("kms")
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    ddb = boto3.client("dynamodb")
    table = f"ledger-{key_id[:8]}"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    bucket = f"cache-{key_id[:8]}".lower()
    boto3.client("s3").create_bucket(Bucket=bucket)
    return {"key_id": key_id, "table": table, "bucket": bucket}


def _broker(aws: dict[str, str], kds: ReplayServer, now: datetime) -> tuple[Api, MemorySink]:
    settings = Settings(
        signer=f"kms:{aws['key_id']}",
        ledger=f"dynamodb:{aws['table']}",
        cache=f"s3:{aws['bucket']}",
        nonce_secret="11" * 32,
        issuer="https://broker.example",
        amd_kds_url=kds.base_url,
    )
    real = default_registry()
    sink = MemorySink()
    broker = build_broker(settings, registry=Registry([EchoTestVerifier(), real["snp"]]), sink=sink, clock=lambda: now)
    return Api(broker), sink


def post(api: Api, path: str, doc: dict[str, object]) -> tuple[int, dict]:  # type: ignore[type-arg]
    resp = api.handle(HttpRequest("POST", path, {"content-type": "application/json"}, json.dumps(doc).encode()))
    return resp.status, resp.json()


def test_kms_signed_tokens_dynamodb_ledger_and_s3_cache(aws: dict[str, str]) -> None:
    import boto3

    now = datetime.fromisoformat("2025-06-01T00:00:00+00:00")
    with replay_server({"/vcek/v1/Milan/crl": vector("roots/amd/amd_milan_vcek_crl.pem")}) as kds:
        api, sink = _broker(aws, kds, now)
        # A real SNP report; the CRL comes from the KDS replay, then from S3 for a fresh instance.
        body = {
            "evidence": base64.b64encode(vector("snp/trustee-milan-v2/test-report.bin")).decode(),
            "extras": [base64.b64encode(vector("snp/trustee-milan-v2/test-vcek.der")).decode()],
        }
        status, doc = post(api, "/v1/attest/snp", body)
        assert status == 200, doc
        assert len(doc["token"]) > 4096  # signed through KMS with MessageType=DIGEST
        jwks = api.handle(HttpRequest("GET", "/jwks", {})).json()
        key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(doc["token"])["kid"]].key
        claims = jwt.decode(
            doc["token"],
            key,
            algorithms=["ES256"],
            audience="attestation-broker",
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        assert claims["iss"] == "https://broker.example" and claims["jti"] == doc["claims"]["jti"]
        objects = boto3.client("s3").list_objects_v2(Bucket=aws["bucket"]).get("KeyCount", 0)
        assert objects >= 1
        fetched = len(kds.requests)
        cold_api, _ = _broker(aws, kds, now)  # a new execution environment: empty memory tier
        assert post(cold_api, "/v1/attest/snp", body)[0] == 200
        assert len(kds.requests) == fetched, "the CRL was served from S3, not refetched from KDS"

        # Nonces are single-use across instances through the DynamoDB ledger.
        nonce = post(api, "/v1/challenge", {})[1]["nonce"]
        evidence = ExpectedBinding(bytes.fromhex(nonce)).tpm_extra_data() + b"-"
        echo = {"evidence": base64.b64encode(evidence).decode(), "nonce": nonce}
        status, doc = post(api, "/v1/attest/test-echo", echo)
        assert status == 200, doc
        claims = jwt.decode(
            doc["token"],
            key,
            algorithms=["ES256"],
            audience="attestation-broker",
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        assert claims["eat_nonce"] == nonce and len(doc["token"]) <= 4096  # the RAW path
        status, problem = post(cold_api, "/v1/attest/test-echo", echo)
        assert (status, problem["code"]) == (403, "NONCE_REPLAYED")
        assert [r.error_code for r in sink.records][-1] is None
