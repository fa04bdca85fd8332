"""The BROKER_SIGNER / BROKER_LEDGER / BROKER_CACHE conventions, and that boto3 stays out of cold paths."""

from __future__ import annotations

import subprocess
import sys

import pytest
from attestation_broker.aws.factory import ledger_from_uri, signer_from_uri, store_from_uri
from attestation_broker.aws.kms import KmsSigner
from attestation_broker.aws.ledger import DynamoDbLedger
from attestation_broker.aws.s3store import S3Store
from attestation_broker.errors import BrokerError


def test_uris_build_adapters(aws_env: None) -> None:
    assert isinstance(signer_from_uri("kms:arn:aws:kms:us-east-1:123456789012:key/k"), KmsSigner)
    assert isinstance(ledger_from_uri("dynamodb:broker-ledger"), DynamoDbLedger)
    store = store_from_uri("s3:broker-cache/tenant-a")
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == ("broker-cache", "tenant-a/")
    assert store_from_uri("s3:broker-cache").prefix == ""


@pytest.mark.parametrize(
    ("factory", "value"),
    [
        (signer_from_uri, "local:/tmp/k"),
        (signer_from_uri, "kms:"),
        (ledger_from_uri, "sqlite:x"),
        (store_from_uri, "dir:/x"),
    ],
)
def test_wrong_scheme_is_config_invalid(factory: object, value: str) -> None:
    with pytest.raises(BrokerError) as info:
        factory(value)  # type: ignore[operator]
    assert info.value.code.name == "CONFIG_INVALID"


def test_importing_aws_adapters_does_not_import_boto3() -> None:
    code = (
        "import sys, attestation_broker.aws.factory, attestation_broker.trust.refresh, attestation_broker.trust.cache; "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'eager boto3 import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_adapters_build_no_client_until_first_use() -> None:
    """health/challenge construct every backend but call none: boto3 must not even be imported."""
    code = (
        "import sys\n"
        "from attestation_broker.aws.factory import ledger_from_uri, signer_from_uri, store_from_uri\n"
        "signer_from_uri('kms:alias/k'); ledger_from_uri('dynamodb:t'); store_from_uri('s3:b')\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'client built eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_client_construction_failure_is_a_typed_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """No region configured anywhere: botocore's NoRegionError surfaces as the adapter's 503 code."""
    from datetime import UTC, datetime

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    calls = [
        (lambda: signer_from_uri("kms:k").sign(b"x"), "SIGNER_UNAVAILABLE"),
        (lambda: ledger_from_uri("dynamodb:t").consume("n", expires_at=now, now=now), "LEDGER_UNAVAILABLE"),
        (lambda: store_from_uri("s3:b").get("k"), "COLLATERAL_UNAVAILABLE"),
        (lambda: list(store_from_uri("s3:b").keys()), "COLLATERAL_UNAVAILABLE"),
    ]
    for call, code in calls:
        with pytest.raises(BrokerError) as info:
            call()
        assert info.value.code.name == code and info.value.status == 503
