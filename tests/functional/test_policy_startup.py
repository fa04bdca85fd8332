"""A broken policy document is a configuration error: every Lambda handler fails its INIT phase and
``attestation-broker serve`` exits before listening, each with the problems named (never a 400 to a caller)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "attestation-broker")
BROKEN = "version: 1\npolicies:\n  prod:\n    kinds: [snp, sgx]\n    rules: {allow_debug: true}\n"
GOOD = "version: 1\npolicies:\n  prod:\n    kinds: [snp]\n    rules: {debug: forbidden}\n"
PROBLEMS = (
    "policies.prod.rules: unknown key(s) allow_debug; valid keys: ak_keys, claims, conditions, debug, "
    "max_evidence_age_seconds, min_tcb_status, nonce, reference_values, tcb_minimums, tcb_recovery"
)


def _env(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return {**os.environ, "BROKER_POLICY_FILE": str(path), "BROKER_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize("module", ["challenge", "attest", "verify", "keys", "health"])
def test_broken_policy_fails_every_handler_init(tmp_path: Path, module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", f"import functions.{module}"],
        capture_output=True, text=True, env=_env(tmp_path, BROKEN), timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert "RuntimeError: attestation-broker refuses to start: policy file" in out.stderr
    assert PROBLEMS in out.stderr


def test_valid_policy_handler_init(tmp_path: Path) -> None:
    code = "import functions._http as h; print(h._POLICIES.for_kind('snp').id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path, GOOD))
    assert out.returncode == 0 and out.stdout.startswith("prod@sha256:")


def test_broken_policy_stops_serve(tmp_path: Path) -> None:
    out = subprocess.run(
        [CLI, "serve", "--port", "0"], capture_output=True, text=True, env=_env(tmp_path, BROKEN), timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.startswith("attestation-broker: refusing to start: policy file")
    assert PROBLEMS in out.stderr and "unknown evidence kind 'sgx'" in out.stderr
