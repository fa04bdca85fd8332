"""Bring your own collateral: `collateral fetch` / `collateral import` bundles, verified offline by the CLI and by
`serve --collateral`, exactly like fetched collateral. Vendors are loopback replays of recorded responses.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import free_port, wait_http
from tests.support.replay import ReplayServer
from tests.support.vectors import vector, vector_path
from tests.unit.tdx.support import QUOTES, c1_bodies, serve

CLI = str(Path(sys.executable).parent / "attestation-broker")
D8 = QUOTES["D8"]
D6 = QUOTES["D6"]
D6_JSON = "tdx/dcap-qvl-b0c06f-v4/tdx_quote_collateral.json"
SNP_REPORT = "snp/trustee-milan-v2/test-report.bin"
SNP_VCEK = "snp/trustee-milan-v2/test-vcek.der"
MILAN_CRL = "roots/amd/amd_milan_vcek_crl.pem"
GCP_REPORT = "snp/teekit-gcp-milan-v5/sev-gcp.bin"
GCP_VCEK = "snp/teekit-gcp-milan-v5/sev-gcp-vcek.pem"
C1_NOW = "2026-02-01T00:00:00Z"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, json.loads(out.stdout)


def _pcs_env(replay: ReplayServer) -> dict[str, str]:
    return {
        "BROKER_INTEL_PCS_URL": replay.base_url,
        "BROKER_INTEL_ROOT_CRL_URL": f"{replay.base_url}/sgx/certification/v4/rootcacrl",
        "BROKER_AMD_KDS_URL": replay.base_url,
    }


@pytest.fixture
def tdx_bundle(replay: ReplayServer, tmp_path: Path) -> Path:
    serve(replay, "90c06f000000", c1_bodies())
    out = tmp_path / "bundle"
    code, doc = run("collateral", "fetch", "tdx", str(vector_path(D8)), "--out", str(out), "--now", C1_NOW,
                    env=_pcs_env(replay))  # fmt: skip
    assert code == 0, doc
    assert doc["objects"] == ["intel/tdx/90C06F000000/platform"]
    assert len(replay.requests) == 4  # exactly what the quote needs
    return out


def test_fetched_tdx_bundle_verifies_offline_in_the_cli(tdx_bundle: Path) -> None:
    manifest = json.loads((tdx_bundle / "bundle.json").read_text())
    assert manifest["format"] == "attestation-broker-collateral-bundle" and manifest["version"] == 1
    assert (tdx_bundle / "intel/tdx/90C06F000000-platform.json").is_file()
    code, doc = run("verify", "tdx", str(vector_path(D8)), "--collateral", str(tdx_bundle), "--now", C1_NOW)
    assert code == 0, doc
    sub = doc["claims"]["submods"]["tdx"]
    assert sub["ear_attester_claims"]["tcb"]["status"] == "UpToDate"
    assert {c["source"] for c in sub["ear_verifier_claims"]["collateral"]} == {"bundle"}
    # Past its validity the bundle is refused with the expiry date (never a pass).
    code, doc = run(
        "verify", "tdx", str(vector_path(D8)), "--collateral", str(tdx_bundle), "--now", "2026-03-01T00:00Z"
    )
    assert (code, doc["error"]["code"]) == (1, "COLLATERAL_EXPIRED")
    assert "expired at 2026-02-11T" in doc["error"]["detail"]


def test_tampered_bundle_is_a_typed_error(tdx_bundle: Path) -> None:
    path = tdx_bundle / "intel/tdx/90C06F000000-platform.json"
    path.write_bytes(path.read_bytes().replace(b'"tdx', b'"tdX', 1))
    code, doc = run("verify", "tdx", str(vector_path(D8)), "--collateral", str(tdx_bundle), "--now", C1_NOW)
    assert (code, doc["error"]["code"]) == (2, "COLLATERAL_BUNDLE_INVALID")


@pytest.fixture
def served(tdx_bundle: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BROKER_FIXED_TIME": C1_NOW, "BROKER_OFFLINE": "1", "BROKER_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port), "--collateral", str(tdx_bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_fetched_tdx_bundle_verifies_through_serve_collateral(served: str) -> None:
    import urllib.request

    body = json.dumps({"evidence": base64.b64encode(vector(D8)).decode()}).encode()
    request = urllib.request.Request(
        served + "/v1/attest/tdx", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=20) as resp:
        doc = json.loads(resp.read())
    assert resp.status == 200 and doc["token"].count(".") == 2
    payload = doc["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    sub = claims["submods"]["tdx"]
    assert sub["ear_attester_claims"]["tcb"]["status"] == "UpToDate"
    assert {c["source"] for c in sub["ear_verifier_claims"]["collateral"]} == {"bundle"}


def test_imported_dcap_qvl_json_verifies_the_same_quote(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    code, doc = run("collateral", "import", "--out", str(out), str(vector_path(D6_JSON)))
    assert code == 0, doc
    assert doc["imported"] == [{"file": str(vector_path(D6_JSON)), "as": "intel/tdx/B0C06F000000/platform"}]
    code, via_bundle = run(
        "verify", "tdx", str(vector_path(D6)), "--collateral", str(out), "--now", "2025-07-01T00:00Z"
    )
    assert code == 0, via_bundle
    # The same document given as an extra file (used, not ignored) gives the same appraisal.
    code, via_extra = run("verify", "tdx", str(vector_path(D6)), str(vector_path(D6_JSON)), "--offline",
                          "--now", "2025-07-01T00:00Z")  # fmt: skip
    assert code == 0, via_extra
    a, b = (d["claims"]["submods"]["tdx"] for d in (via_bundle, via_extra))
    assert a["ear_attester_claims"] == b["ear_attester_claims"]
    assert a["ear_trustworthiness_vector"] == b["ear_trustworthiness_vector"]


def test_snp_fetch_and_import_bundles_verify_offline(replay: ReplayServer, tmp_path: Path) -> None:
    replay.add("/vcek/v1/Milan/crl", vector(MILAN_CRL))
    fetched = tmp_path / "fetched"
    code, doc = run("collateral", "fetch", "snp", str(vector_path(SNP_REPORT)), str(vector_path(SNP_VCEK)),
                    "--out", str(fetched), "--now", "2025-06-01T00:00:00Z", env=_pcs_env(replay))  # fmt: skip
    assert code == 0, doc
    assert doc["objects"] == ["amd/vcek/v1/Milan/crl"]
    code, doc = run("verify", "snp", str(vector_path(SNP_REPORT)), str(vector_path(SNP_VCEK)), "--collateral",
                    str(fetched), "--now", "2025-06-01T00:00:00Z")  # fmt: skip
    assert code == 0, doc
    sources = {c["source"] for c in doc["claims"]["submods"]["snp"]["ear_verifier_claims"]["collateral"]}
    assert "bundle" in sources
    # Imported: the CRL and the VCEK (a v5 report names its chip and TCB, so the VCEK is found by its KDS key).
    imported = tmp_path / "imported"
    code, doc = run("collateral", "import", "--out", str(imported), str(vector_path(MILAN_CRL)),
                    str(vector_path(GCP_VCEK)))  # fmt: skip
    assert code == 0, doc
    keys = [item["as"] for item in doc["imported"]]
    assert keys[0] == "amd/vcek|vlek/v1/Milan/crl" and keys[1].startswith("amd/vcek/v1/Milan/")
    code, doc = run("verify", "snp", str(vector_path(GCP_REPORT)), "--collateral", str(imported),
                    "--now", "2026-01-01T00:00:00Z")  # fmt: skip
    assert code == 0, doc
    sources = {c["source"] for c in doc["claims"]["submods"]["snp"]["ear_verifier_claims"]["collateral"]}
    assert sources == {"bundle"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"hello", "not dcap-qvl JSON"),
        (b'{"tcb_info_signature": "00", "tcb_info": "{}", "qe_identity": "{}"}', "dcap-qvl"),
        (None, "VLEK"),
    ],
)
def test_import_refuses_what_it_cannot_use(tmp_path: Path, content: bytes | None, needle: str) -> None:
    path = tmp_path / "input"
    path.write_bytes(content if content is not None else vector("snp/trustee-aws-vlek-milan-v3/test-vlek.der"))
    code, doc = run("collateral", "import", "--out", str(tmp_path / "b"), str(path))
    assert code == 2 and doc["error"]["code"] in ("COLLATERAL_BUNDLE_INVALID", "COLLATERAL_INVALID")
    assert needle.lower() in doc["error"]["detail"].lower()


def test_intel_crl_without_tdx_collateral_is_refused(tmp_path: Path) -> None:
    crl = tmp_path / "root.crl"
    crl.write_bytes(c1_bodies()["root_crl"])
    code, doc = run("collateral", "import", "--out", str(tmp_path / "b"), str(crl))
    assert code == 2 and "import the dcap-qvl JSON first" in doc["error"]["detail"]
