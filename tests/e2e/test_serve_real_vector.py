"""End to end with real evidence: `attestation-broker serve` (clock pinned to the vector's time)
fetches the AMD CRL from a loopback KDS replay and attests a real SEV-SNP report over HTTP."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from tests.e2e.test_serve import call
from tests.support.proc import free_port, wait_http
from tests.support.replay import ReplayServer, replay_server
from tests.support.vectors import vector

pytestmark = pytest.mark.e2e

REPORT = "snp/trustee-milan-v2/test-report.bin"
VCEK = "snp/trustee-milan-v2/test-vcek.der"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ReplayServer]]:
    with replay_server({"/vcek/v1/Milan/crl": vector("roots/amd/amd_milan_vcek_crl.pem")}) as kds:
        port = free_port()
        env = {
            **os.environ,
            "BROKER_FIXED_TIME": "2025-06-01T00:00:00Z",
            "BROKER_AMD_KDS_URL": kds.base_url,
            "BROKER_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        }
        cli = Path(sys.executable).parent / "attestation-broker"
        proc = subprocess.Popen(
            [str(cli), "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(base + "/healthz")
            yield base, kds
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def body(report: bytes) -> bytes:
    return json.dumps(
        {"evidence": base64.b64encode(report).decode(), "extras": [base64.b64encode(vector(VCEK)).decode()]}
    ).encode()


def test_real_snp_report_is_attested_over_http(broker) -> None:  # type: ignore[no-untyped-def]
    base, kds = broker
    status, _, doc = call(base, "POST", "/v1/attest/snp", body(vector(REPORT)))
    assert status == 200, doc
    claims = doc["claims"]
    attester = claims["submods"]["snp"]["ear_attester_claims"]
    assert attester["tee"] == "sev-snp" and attester["measurement"].startswith("a1f39304")
    assert claims["ear_status"] in ("affirming", "warning")
    assert "/vcek/v1/Milan/crl" in kds.requests
    _, _, jwks = call(base, "GET", "/jwks")
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(doc["token"])["kid"]].key
    decoded = jwt.decode(
        doc["token"],
        key,
        algorithms=["ES256"],
        audience="attestation-broker",
    )  # BROKER_FIXED_TIME pins only the evidence time: the token is current for a real JWT library
    assert decoded["jti"] == claims["jti"]


def test_tampered_real_report_is_rejected_over_http(broker) -> None:  # type: ignore[no-untyped-def]
    base, _ = broker
    tampered = bytearray(vector(REPORT))
    tampered[0x90] ^= 0x01  # inside MEASUREMENT, a signed field
    status, headers, doc = call(base, "POST", "/v1/attest/snp", body(bytes(tampered)))
    assert status == 403 and doc["code"] == "SNP_SIGNATURE_INVALID"
    assert headers["content-type"] == "application/problem+json"
