"""DynamoDbLedger against moto DynamoDB over HTTP: single use, TTL attribute, failure mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attestation_broker.aws.ledger import DynamoDbLedger
from attestation_broker.errors import BrokerError
from botocore.stub import Stubber

from tests.unit.aws.conftest import client, unreachable_endpoint

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_first_use_recorded_with_ttl_then_replay_rejected(dynamodb: Any, ledger_table: str) -> None:
    ledger = DynamoDbLedger(ledger_table, client=dynamodb)
    expires = NOW + timedelta(minutes=5)
    ledger.consume("nonce-1", expires_at=expires, now=NOW)
    item = dynamodb.get_item(TableName=ledger_table, Key={"pk": {"S": "nonce-1"}})["Item"]
    assert item["expires_at"] == {"N": str(int(expires.timestamp()))}
    with pytest.raises(BrokerError) as info:
        ledger.consume("nonce-1", expires_at=expires, now=NOW + timedelta(seconds=1))
    assert info.value.code.name == "NONCE_REPLAYED" and info.value.status == 403
    ledger.consume("nonce-2", expires_at=expires, now=NOW)  # other nonces are independent


def test_replay_rejected_across_ledger_instances(dynamodb: Any, ledger_table: str) -> None:
    """Two Lambda instances share the table: the second one sees the first one's use."""
    DynamoDbLedger(ledger_table, client=dynamodb).consume("n", expires_at=NOW + timedelta(minutes=5), now=NOW)
    with pytest.raises(BrokerError) as info:
        DynamoDbLedger(ledger_table, client=dynamodb).consume("n", expires_at=NOW + timedelta(minutes=5), now=NOW)
    assert info.value.code.name == "NONCE_REPLAYED"


def test_item_past_ttl_but_not_yet_deleted_counts_as_absent(dynamodb: Any, ledger_table: str) -> None:
    """DynamoDB TTL deletion lags; an expired record must not block (the nonce's own TTL check rejects it)."""
    ledger = DynamoDbLedger(ledger_table, client=dynamodb)
    ledger.consume("n", expires_at=NOW + timedelta(minutes=5), now=NOW)
    later = NOW + timedelta(minutes=6)
    ledger.consume("n", expires_at=later + timedelta(minutes=5), now=later)
    with pytest.raises(BrokerError):
        ledger.consume("n", expires_at=later + timedelta(minutes=5), now=later)


def test_missing_table_is_ledger_unavailable(dynamodb: Any) -> None:
    with pytest.raises(BrokerError) as info:
        DynamoDbLedger("no-such-table", client=dynamodb).consume("n", expires_at=NOW, now=NOW)
    assert info.value.code.name == "LEDGER_UNAVAILABLE" and info.value.status == 503
    assert "ResourceNotFoundException" in info.value.detail


def test_unreachable_dynamodb_is_ledger_unavailable(aws_env: None) -> None:
    ledger = DynamoDbLedger("t", client=client("dynamodb", unreachable_endpoint()))
    with pytest.raises(BrokerError) as info:
        ledger.consume("n", expires_at=NOW, now=NOW)
    assert info.value.code.name == "LEDGER_UNAVAILABLE" and info.value.status == 503
    assert info.value.retry_after is not None


@pytest.mark.parametrize("error", ["ProvisionedThroughputExceededException", "AccessDeniedException"])
def test_service_errors_are_ledger_unavailable(aws_env: None, error: str) -> None:
    dynamodb = client("dynamodb", "http://127.0.0.1:9")
    with Stubber(dynamodb) as stub:
        stub.add_client_error("put_item", service_error_code=error, http_status_code=400)
        with pytest.raises(BrokerError) as info:
            DynamoDbLedger("t", client=dynamodb).consume("n", expires_at=NOW, now=NOW)
    assert info.value.code.name == "LEDGER_UNAVAILABLE"
