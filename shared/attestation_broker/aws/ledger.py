"""Single-use nonce ledger on DynamoDB: the ReplayLedger port of attestation_broker.ledger.

See docs/architecture.md "Freshness".

One item per consumed nonce: ``pk`` (string, the nonce id) and ``expires_at`` (number, epoch seconds),
which is the table's TTL attribute so DynamoDB deletes spent nonces by itself. ``consume`` is one
conditional ``PutItem``: it succeeds when no live item has that key. TTL deletion is lazy (items may
outlive their expiry by hours), so an item already past ``expires_at`` counts as absent, exactly like the
SQLite ledger's purge-then-insert. ConditionalCheckFailed is NONCE_REPLAYED; any other failure is
LEDGER_UNAVAILABLE (503), never a pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from attestation_broker.aws.clients import LazyClient, aws_errors, error_name
from attestation_broker.errors import CONFIG_INVALID, LEDGER_UNAVAILABLE, NONCE_REPLAYED

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TTL_ATTRIBUTE = "expires_at"


class DynamoDbLedger:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        if not table_name:
            raise CONFIG_INVALID("DynamoDB ledger needs a table name")
        self._table = table_name
        self._lazy = LazyClient("dynamodb", client)

    def _client(self) -> DynamoDBClient:
        client: DynamoDBClient = self._lazy.get()
        return client

    def consume(self, nonce_id: str, *, expires_at: datetime, now: datetime) -> None:
        try:
            self._client().put_item(
                TableName=self._table,
                Item={"pk": {"S": nonce_id}, TTL_ATTRIBUTE: {"N": str(int(expires_at.timestamp()))}},
                ConditionExpression="attribute_not_exists(pk) OR #exp < :now",
                ExpressionAttributeNames={"#exp": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
            )
        except aws_errors() as exc:
            if error_name(exc) == "ConditionalCheckFailedException":
                raise NONCE_REPLAYED() from None
            raise LEDGER_UNAVAILABLE(f"DynamoDB PutItem failed: {error_name(exc)}") from None
