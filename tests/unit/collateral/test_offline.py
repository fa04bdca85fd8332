"""Recorded collateral directories and offline mode: typed errors, recorded headers, expired copies."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.trust.cache import CachedObject, CollateralCache, DirectoryStore
from attestation_broker.trust.directory import DirectoryFetcher
from attestation_broker.trust.fetch import OfflineFetcher
from attestation_broker.trust.refresh import COLLATERAL_TYPES

from tests.support.vectors import vector, vector_path

CLI = str(Path(sys.executable).parent / "attestation-broker")
MILAN_CRL = "roots/amd/amd_milan_vcek_crl.pem"  # valid 2025-05-06 .. 2026-05-12
CRL_URL = "https://kdsintf.amd.com/vcek/v1/Milan/crl"


def _cli(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stderr
    return out.returncode, json.loads(out.stdout)


@pytest.mark.parametrize(
    "index",
    [b"{not json", b"[1, 2]", b'{"https://x/a": 3}', b'{"https://x/a": {"file": "a", "headers": [1]}}', b"\xff"],
)
def test_bad_index_json_is_a_typed_error(tmp_path: Path, index: bytes) -> None:
    (tmp_path / "index.json").write_bytes(index)
    with pytest.raises(BrokerError) as exc:
        DirectoryFetcher(tmp_path)
    assert (exc.value.code.name, exc.value.status, exc.value.exit_code) == ("COLLATERAL_BUNDLE_INVALID", 400, 2)


def test_cli_verify_with_bad_index_json_exits_2_with_json(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{broken")
    code, doc = _cli(
        "verify", "snp", str(vector_path("snp/trustee-milan-v2/test-report.bin")), "--collateral", str(tmp_path)
    )
    assert code == 2
    assert doc["error"]["code"] == "COLLATERAL_BUNDLE_INVALID" and doc["error"]["status"] == 400
    assert doc["ear_status"] is None


def test_recorded_headers_travel_with_the_body(tmp_path: Path) -> None:
    target = tmp_path / "pcs.example" / "tdx" / "certification" / "v4" / "qe" / "identity"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"{}")
    target.with_name("identity.headers.json").write_text(json.dumps({"SGX-Enclave-Identity-Issuer-Chain": "x%20y"}))
    got = DirectoryFetcher(tmp_path).get("https://pcs.example/tdx/certification/v4/qe/identity", timeout=1)
    assert got.headers == {"SGX-Enclave-Identity-Issuer-Chain": "x%20y"}
    (tmp_path / "index.json").write_text(
        json.dumps({"https://other/x": {"file": "pcs.example/tdx/certification/v4/qe/identity", "headers": {"A": "b"}}})
    )
    assert DirectoryFetcher(tmp_path).get("https://other/x", timeout=1).headers == {"A": "b"}


def _expired_store(tmp_path: Path) -> DirectoryStore:
    store = DirectoryStore(tmp_path)
    body = vector(MILAN_CRL)
    crl = COLLATERAL_TYPES["crl"]
    obj = CachedObject(CRL_URL, body, datetime(2026, 1, 1, tzinfo=UTC), crl.expires(body, datetime.now(UTC)), "origin")
    store.put(CollateralCache.key(CRL_URL), obj.encode())
    return store


def test_offline_expired_copy_says_expired_and_when(tmp_path: Path) -> None:
    cache = CollateralCache(OfflineFetcher(), _expired_store(tmp_path))
    crl = COLLATERAL_TYPES["crl"]
    now = datetime(2026, 6, 1, tzinfo=UTC)
    with pytest.raises(BrokerError) as exc:
        cache.get(CRL_URL, now=now, expires=crl.expires_from(now), collateral_type="crl")
    assert exc.value.code.name == "COLLATERAL_EXPIRED"
    assert "expired at 2026-05-12" in exc.value.detail and "offline" in exc.value.detail
    assert "not cached" not in exc.value.detail
    # Inside the stale-if-error grace the copy is served, flagged stale.
    got = cache.get(CRL_URL, now=now, expires=crl.expires_from(now), stale_grace=timedelta(days=30))
    assert got.stale is True


def test_cli_expired_recorded_crl_says_expired_and_when(tmp_path: Path) -> None:
    crl = tmp_path / "kdsintf.amd.com" / "vcek" / "v1" / "Milan" / "crl"
    crl.parent.mkdir(parents=True)
    crl.write_bytes(vector(MILAN_CRL))
    code, doc = _cli(
        "verify",
        "snp",
        str(vector_path("snp/trustee-milan-v2/test-report.bin")),
        str(vector_path("snp/trustee-milan-v2/test-vcek.der")),
        "--now",
        "2026-06-01T00:00:00Z",
        "--collateral",
        str(tmp_path),
    )
    assert (code, doc["error"]["code"]) == (1, "COLLATERAL_EXPIRED")
    assert "expired at 2026-05-12T" in doc["error"]["detail"]
