"""Shared collateral store on S3 (the BlobStore port of attestation_broker.trust.cache).

S3 ``PutObject`` replaces an object atomically (readers see the old or the new object, never a torn
one), so concurrent writers of the same URL are harmless: the last complete object wins. Objects are
written with SSE-S3 (``AES256``) even though the bucket also enforces default encryption. Object key =
``prefix + key``; the cache's keys already read ``collateral/<sha256(url)>``.
A missing object is a miss (None); every other failure raises COLLATERAL_UNAVAILABLE, which the cache
counts and degrades around (memory → origin).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from attestation_broker.aws.clients import LazyClient, aws_errors, error_name
from attestation_broker.errors import COLLATERAL_UNAVAILABLE, CONFIG_INVALID
from attestation_broker.trust.fetch import MAX_COLLATERAL_BYTES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = ("NoSuchKey", "404", "NotFound")


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        if not bucket:
            raise CONFIG_INVALID("S3 store needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix
        self._lazy = LazyClient("s3", client)

    def _client(self) -> S3Client:
        client: S3Client = self._lazy.get()
        return client

    def get(self, key: str) -> bytes | None:
        try:
            response = self._client().get_object(Bucket=self.bucket, Key=self.prefix + key)
            body = response["Body"]
            data = body.read(MAX_COLLATERAL_BYTES + 64 * 1024)
            body.close()
        except aws_errors() as exc:
            if error_name(exc) in _MISSING:
                return None
            raise COLLATERAL_UNAVAILABLE(f"S3 GetObject failed: {error_name(exc)}") from None
        return data

    def put(self, key: str, data: bytes) -> None:
        try:
            self._client().put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ContentType="application/octet-stream",
                ServerSideEncryption="AES256",
            )
        except aws_errors() as exc:
            raise COLLATERAL_UNAVAILABLE(f"S3 PutObject failed: {error_name(exc)}") from None

    def keys(self, under: str = "") -> Iterator[str]:
        """Store keys (without ``prefix``) beginning with ``under``, for the scheduled refresher."""
        try:
            paginator = self._client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + under):
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except aws_errors() as exc:
            raise COLLATERAL_UNAVAILABLE(f"S3 ListObjectsV2 failed: {error_name(exc)}") from None
