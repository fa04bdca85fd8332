"""Fixtures: one moto server (real HTTP on loopback) per test session and boto3 clients pointed at it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from attestation_broker.aws.clients import make_client

DUMMY_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


def client(service: str, endpoint: str, **kwargs: Any) -> Any:
    return make_client(service, endpoint_url=endpoint, **DUMMY_CREDENTIALS, **kwargs)


@pytest.fixture
def kms(moto_endpoint: str, aws_env: None) -> Any:
    return client("kms", moto_endpoint)


@pytest.fixture
def dynamodb(moto_endpoint: str, aws_env: None) -> Any:
    return client("dynamodb", moto_endpoint)


@pytest.fixture
def s3(moto_endpoint: str, aws_env: None) -> Any:
    return client("s3", moto_endpoint)


@pytest.fixture
def signing_key_id(kms: Any) -> str:
    response = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="broker test")
    return str(response["KeyMetadata"]["Arn"])


@pytest.fixture
def ledger_table(dynamodb: Any) -> str:
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return name


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"cache-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


def unreachable_endpoint() -> str:
    """A loopback port with nothing listening: connection refused immediately."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
