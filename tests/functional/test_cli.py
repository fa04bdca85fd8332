"""The `attestation-broker` CLI on real vectors: exit codes 0 / 1 / 2 and one JSON object on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.vectors import vector, vector_path

CLI = str(Path(sys.executable).parent / "attestation-broker")
REPORT = "snp/trustee-milan-v2/test-report.bin"
VCEK = "snp/trustee-milan-v2/test-vcek.der"


def run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60)
    return out.returncode, json.loads(out.stdout)


@pytest.fixture
def kds_mirror(tmp_path: Path) -> Path:
    crl = tmp_path / "kdsintf.amd.com" / "vcek" / "v1" / "Milan" / "crl"
    crl.parent.mkdir(parents=True)
    crl.write_bytes(vector("roots/amd/amd_milan_vcek_crl.pem"))
    return tmp_path


def test_verify_real_report_with_recorded_collateral(kds_mirror: Path) -> None:
    code, doc = run(
        "verify",
        "snp",
        str(vector_path(REPORT)),
        str(vector_path(VCEK)),
        "--now",
        "2025-06-01T00:00:00Z",
        "--collateral",
        str(kds_mirror),
    )
    assert code == 0, doc
    assert doc["ear_status"] in ("affirming", "warning")
    assert doc["claims"]["submods"]["snp"]["ear_attester_claims"]["tee"] == "sev-snp"
    assert doc["token"].count(".") == 2


def test_verify_tampered_report_exits_1(kds_mirror: Path, tmp_path: Path) -> None:
    tampered = bytearray(vector(REPORT))
    tampered[0x90] ^= 1
    path = tmp_path / "tampered.bin"
    path.write_bytes(bytes(tampered))
    code, doc = run(
        "verify",
        "snp",
        str(path),
        str(vector_path(VCEK)),
        "--now",
        "2025-06-01T00:00:00Z",
        "--collateral",
        str(kds_mirror),
    )
    assert (code, doc["error"]["code"]) == (1, "SNP_SIGNATURE_INVALID")


def test_verify_offline_without_crl_is_collateral_unavailable() -> None:
    code, doc = run(
        "verify", "snp", str(vector_path(REPORT)), str(vector_path(VCEK)), "--now", "2025-06-01T00:00:00Z", "--offline"
    )
    assert (code, doc["error"]["code"]) == (1, "COLLATERAL_UNAVAILABLE")


def test_verify_nonce_binding_mismatch_exits_1(kds_mirror: Path) -> None:
    code, doc = run(
        "verify",
        "snp",
        str(vector_path(REPORT)),
        str(vector_path(VCEK)),
        "--now",
        "2025-06-01T00:00:00Z",
        "--collateral",
        str(kds_mirror),
        "--nonce",
        "00" * 32,
    )
    assert (code, doc["error"]["code"]) == (1, "NONCE_BINDING_MISMATCH")


def test_verify_unusable_input_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a report")
    code, doc = run("verify", "snp", str(junk), "--offline")
    assert code == 2 and doc["error"]["status"] == 400
    code, doc = run("verify", "no-such-kind", str(junk), "--offline")
    assert code == 2 and doc["error"]["code"] == "UNKNOWN_EVIDENCE_KIND"


def test_token_verify_round_trip(kds_mirror: Path, tmp_path: Path) -> None:
    # Issue a token with a local data dir key through the library, then verify it with the CLI.
    from datetime import UTC, datetime, timedelta

    from attestation_broker import appraisal as ar4si
    from attestation_broker.appraisal import Appraisal
    from attestation_broker.token.issuer import TokenService
    from attestation_broker.token.keys import local_keyring

    ring = local_keyring(tmp_path)
    svc = TokenService(ring, issuer="http://127.0.0.1:8080", audience="attestation-broker", ttl=timedelta(minutes=5))
    appraisal = Appraisal(
        kind="snp",
        trustworthiness_vector={"hardware": ar4si.HW_GENUINE},
        attester_claims={"tee": "sev-snp", "platform": "unknown"},
    )
    token = svc.sign(svc.claims_for(appraisal, evidence_sha256="0" * 64, now=datetime.now(UTC), nonce=None))
    code, doc = run("token", "verify", token, "--data-dir", str(tmp_path))
    assert code == 0 and doc["valid"] is True and doc["claims"]["submods"]["snp"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(ring.jwks(datetime.now(UTC))))
    code, doc = run("token", "verify", token[:-3] + "AAA", "--jwks", str(jwks))
    assert code == 1 and doc["error"]["code"] == "TOKEN_INVALID"


def test_help() -> None:
    out = subprocess.run([CLI, "verify", "--help"], capture_output=True, text=True, check=True)
    assert "--collateral" in out.stdout and "--now" in out.stdout
