"""`collateral upload`: a bundle seeds the S3 collateral store (moto S3 over loopback HTTP), readable by the cache."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from attestation_broker.aws.s3store import S3Store
from attestation_broker.cli import main
from attestation_broker.trust.cache import CachedObject, CollateralCache
from attestation_broker.trust.fetch import OfflineFetcher
from attestation_broker.trust.refresh import COLLATERAL_TYPES
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.vectors import vector, vector_path


def test_upload_bundle_to_s3(
    s3: Any, bucket: str, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    out = tmp_path / "bundle"
    assert main(["collateral", "import", "--out", str(out), str(vector_path("roots/amd/amd_milan_vcek_crl.pem"))]) == 0
    capsys.readouterr()
    assert main(["collateral", "upload", str(out), "--cache", f"s3:{bucket}/broker"]) == 0
    doc = json.loads(capsys.readouterr().out)
    url = "https://kdsintf.amd.com/vcek/v1/Milan/crl"
    assert url in doc["uploaded"] and doc["cache"] == f"s3:{bucket}/broker"
    # A broker reading the same store (no network) finds the CRL, tagged for the refresher.
    cache = CollateralCache(OfflineFetcher(), S3Store(bucket, "broker/", client=s3))
    now = datetime(2025, 6, 1, tzinfo=UTC)
    got = cache.get(url, now=now, expires=COLLATERAL_TYPES["crl"].expires_from(now))
    der = x509.load_pem_x509_crl(vector("roots/amd/amd_milan_vcek_crl.pem")).public_bytes(Encoding.DER)
    assert got.source == "store" and got.body == der  # import stores CRLs as DER
    raw = S3Store(bucket, "broker/", client=s3).get(CollateralCache.key(url))
    stored = CachedObject.decode(raw or b"", "store")
    assert stored is not None and stored.collateral_type == "crl"
