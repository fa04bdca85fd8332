"""`attestation-broker verify --revocation skip`: recorded evidence verified without CRLs / OCSP, for every
kind (snp, nvidia-gpu and tdx here); recorded in the verifier claims and capped at warning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.vectors import vector_path
from tests.unit.tdx.support import QUOTES, c1_bodies, c1_chains

CLI = str(Path(sys.executable).parent / "attestation-broker")
SNP = ("snp", "snp/trustee-milan-v2/test-report.bin", "snp/trustee-milan-v2/test-vcek.der")
GPU_SET = "nvidia/nvtrust/h100pcie_550.90.07_2025/"
GPU = (
    "nvidia-gpu",
    GPU_SET + "hopperAttestationReport.txt",
    GPU_SET + "hopperCertChain.txt",
    "nvidia/museop/NV_GPU_DRIVER_GH100_550.90.07.swidtag",
    "nvidia/museop/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag",
)


def run(kind: str, files: tuple[str, ...], now: str, *flags: str) -> tuple[int, dict[str, Any]]:
    args = [CLI, "verify", kind, *(str(vector_path(f)) for f in files), "--now", now, "--offline", *flags]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return out.returncode, json.loads(out.stdout)


def test_snp_offline_with_revocation_skipped() -> None:
    code, doc = run(SNP[0], SNP[1:], "2025-06-01T00:00:00Z", "--revocation", "skip")
    assert code == 0, doc
    assert doc["ear_status"] == "warning"
    submod = doc["claims"]["submods"]["snp"]
    assert submod["ear_verifier_claims"]["revocation"] == "skipped"
    assert not [c for c in submod["ear_verifier_claims"]["collateral"] if c.get("type") == "crl"]
    assert submod["ear_trustworthiness_vector"]["hardware"] == 32


def test_gpu_offline_with_revocation_skipped_compares_to_zero_mismatches() -> None:
    code, doc = run(GPU[0], GPU[1:], "2026-03-01T00:00:00Z", "--revocation", "skip")
    assert code == 0, doc
    assert doc["ear_status"] == "warning"
    device = doc["claims"]["submods"]["nvidia-gpu"]["ear_attester_claims"]["nvidia"]["devices"][0]
    assert device["measurements"]["status"] == "match"
    assert device["measurements"]["mismatches"] == []


def test_without_skip_missing_revocation_data_is_collateral_unavailable() -> None:
    for kind, *files in (SNP, GPU):
        code, doc = run(kind, tuple(files), "2026-03-01T00:00:00Z" if kind == "nvidia-gpu" else "2025-06-01T00:00:00Z")
        assert (code, doc["error"]["code"]) == (3, "COLLATERAL_UNAVAILABLE"), kind  # could not decide


def _tdx_collateral_without_crls(directory: Path) -> Path:
    """Recorded Intel collateral as a ``--collateral`` directory: TCB info and QE identity with their issuer-chain
    headers, and no CRLs."""
    pcs = "https://api.trustedservices.intel.com"
    index: dict[str, Any] = {}
    for kind, url, header in (
        ("tcb_info", f"{pcs}/tdx/certification/v4/tcb?fmspc=90C06F000000", "TCB-Info-Issuer-Chain"),
        ("qe_identity", f"{pcs}/tdx/certification/v4/qe/identity", "SGX-Enclave-Identity-Issuer-Chain"),
    ):
        (directory / f"{kind}.json").write_bytes(c1_bodies()[kind])
        index[url] = {"file": f"{kind}.json", "headers": {header: c1_chains()[kind]}}
    (directory / "index.json").write_text(json.dumps(index))
    return directory


def test_tdx_recorded_collateral_without_crls(tmp_path: Path) -> None:
    quote = str(vector_path(QUOTES["D8"]))
    collateral = str(_tdx_collateral_without_crls(tmp_path))
    base = [CLI, "verify", "tdx", quote, "--now", "2026-02-01T00:00:00Z", "--collateral", collateral]
    checked = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert (checked.returncode, json.loads(checked.stdout)["error"]["code"]) == (3, "COLLATERAL_UNAVAILABLE")

    skipped = subprocess.run([*base, "--revocation", "skip"], capture_output=True, text=True, timeout=60)
    doc = json.loads(skipped.stdout)
    assert skipped.returncode == 0, doc
    assert doc["ear_status"] == "warning"
    submod = doc["claims"]["submods"]["tdx"]
    assert submod["ear_verifier_claims"]["revocation"] == "skipped"
    assert [c["type"] for c in submod["ear_verifier_claims"]["collateral"]] == ["tcb_info", "qe_identity"]
    assert submod["ear_trustworthiness_vector"]["hardware"] == 32
