"""Build the AWS adapters from the broker's environment conventions (serverless.yml sets these).

``BROKER_SIGNER=kms:<key id|ARN|alias>``, ``BROKER_LEDGER=dynamodb:<table>``,
``BROKER_CACHE=s3:<bucket>[/<prefix>]``. Each function takes the whole value and fails with
CONFIG_INVALID on a different scheme or an empty name, so a typo never silently falls back to a
local backend.
"""

from __future__ import annotations

from attestation_broker.aws.kms import KmsSigner
from attestation_broker.aws.ledger import DynamoDbLedger
from attestation_broker.aws.s3store import S3Store
from attestation_broker.errors import CONFIG_INVALID


def _split(value: str, scheme: str) -> str:
    prefix = scheme + ":"
    if not value.startswith(prefix) or not value[len(prefix) :].strip():
        raise CONFIG_INVALID(f"expected {scheme}:<name>")
    return value[len(prefix) :].strip()


def signer_from_uri(value: str, algorithm: str = "ES256") -> KmsSigner:
    return KmsSigner(_split(value, "kms"), algorithm=algorithm)


def ledger_from_uri(value: str) -> DynamoDbLedger:
    return DynamoDbLedger(_split(value, "dynamodb"))


def store_from_uri(value: str) -> S3Store:
    bucket, _, prefix = _split(value, "s3").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3Store(bucket, prefix)
