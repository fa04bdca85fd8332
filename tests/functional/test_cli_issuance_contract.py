"""The issuance contract through ``attestation-broker verify ... --policy FILE`` for all eight kinds and
``nvidia-gpu``, on the same real vectors and policies as the HTTP / Lambda table
(tests/functional/test_issuance_contract.py; docs/policy.md "Issuance contract"):

- a policy the evidence does not satisfy: exit 1, ``error.code == "POLICY_REJECTED"``, the failed rule named with
  expected/actual, the appraisal it would have signed (no ``jti``), and no ``token`` key;
- a policy the evidence satisfies: exit 0, and with ``--sign`` a token whose ``ear_appraisal_policy_ids`` names
  that policy.

The CLI runs in-process (``attestation_broker.cli.main``) so loopback stand-ins replay the vendors: Intel PCS for
``tdx`` (the evidence's recorded dcap-qvl collateral, served as PCS would), AMD KDS CRLs for ``azure-vtpm``, and
the Google / MAA key sets for the two token kinds through the same key-URL seam the HTTP table uses.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from attestation_broker import bootstrap
from attestation_broker.cli import main
from attestation_broker.registry import Registry

from tests.functional.test_issuance_contract import CASES, Case, _at, b64
from tests.support.replay import ReplayServer
from tests.support.vectors import vector

GPU_SET = "nvidia/nvtrust/h100pcie_550.90.07_2025/"


def _gpu() -> dict[str, Any]:
    return {
        "evidence": b64(vector(GPU_SET + "hopperAttestationReport.txt")),
        "extras": [
            b64(vector(GPU_SET + "hopperCertChain.txt")),
            b64(vector("nvidia/museop/NV_GPU_DRIVER_GH100_550.90.07.swidtag")),
            b64(vector("nvidia/museop/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag")),
        ],
    }


# nvidia-gpu too: the recorded H100 report with its certificate chain and RIMs. No OCSP responses were recorded
# for it, so it runs offline with ``--revocation skip`` (capped at warning, as tests/functional/test_cli_revocation.py).
ALL = [*CASES, Case("nvidia-gpu", "nvidia-cc", _gpu, _at("2026-03-01T00:00:00+00:00"), False)]
ALL_IDS = [c.kind for c in ALL]
FLAGS = {"nvidia-gpu": ["--offline", "--revocation", "skip"]}

REFUSE = {"reference_values": [{"label": "other-workload", "claims": {"tee": "none-such"}}]}


def _tdx_pcs(replay: ReplayServer, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve the evidence's recorded dcap-qvl collateral as Intel PCS would (bodies + issuer-chain headers)."""
    from attestation_broker.evidence.tdx import TdxCollateral

    from tests.unit.tdx.support import pcs_routes

    collateral = TdxCollateral.from_dcap_qvl_json(json.dumps(body["collateral"]))
    fmspc = str(json.loads(collateral.tcb_info.signed)["fmspc"])
    replay.routes.update(pcs_routes(collateral, fmspc))
    monkeypatch.setenv("BROKER_INTEL_PCS_URL", replay.base_url)
    monkeypatch.setenv("BROKER_INTEL_ROOT_CRL_URL", f"{replay.base_url}/sgx/certification/v4/rootcacrl")


def _argv(tmp_path: Path, replay: ReplayServer, case: Case, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The HTTP case's envelope as files on the command line, its settings as BROKER_* variables."""
    body = case.body()
    files = []
    for i, blob in enumerate([body["evidence"], *body.get("extras", [])]):
        path = tmp_path / f"input-{i}.bin"
        path.write_bytes(base64.b64decode(blob))
        files.append(str(path))
    if "collateral" in body:
        _tdx_pcs(replay, body, monkeypatch)
    for name, value in case.settings(replay).items():
        monkeypatch.setenv(f"BROKER_{name.upper()}", str(value))
    if case.verifier is not None:
        verifier = case.verifier(replay)
        monkeypatch.setattr(bootstrap, "default_registry", lambda: Registry([verifier]))
    monkeypatch.setenv("BROKER_DATA_DIR", str(tmp_path / "data"))
    return ["verify", case.kind, *files, "--now", case.now().isoformat(), *FLAGS.get(case.kind, [])]


def _run(
    tmp_path: Path,
    replay: ReplayServer,
    case: Case,
    rules: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *flags: str,
) -> tuple[int, dict[str, Any]]:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 1, "policies": {"cli-test": {"kinds": [case.kind], "rules": rules}}}))
    capsys.readouterr()
    code = main([*_argv(tmp_path, replay, case, monkeypatch), "--policy", str(policy), *flags])
    out = capsys.readouterr().out
    doc: dict[str, Any] = json.loads(out)
    return code, doc


@pytest.mark.parametrize("case", ALL, ids=ALL_IDS)
def test_cli_refusal_has_the_failed_rule_and_no_token(
    tmp_path: Path,
    replay: ReplayServer,
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, doc = _run(tmp_path, replay, case, REFUSE, monkeypatch, capsys)
    assert code == 1, doc
    assert "token" not in doc and "claims" not in doc
    assert doc["error"]["code"] == "POLICY_REJECTED" and doc["error"]["status"] == 403
    (rule,) = [r for r in doc["error"]["failed_rules"] if r["rule"] == "reference_values"]
    assert (rule["policy"], rule["actual"], rule["expected"]) == (
        "cli-test",
        {"tee": case.tee},
        {"other-workload": {"tee": "none-such"}},
    )
    submod = doc["appraisal"]["submods"][case.kind]
    assert submod["ear_appraisal_policy_ids"][0].startswith("cli-test@sha256:")
    assert "jti" not in doc["appraisal"] and doc["ear_status"] == "contraindicated"


@pytest.mark.parametrize("case", ALL, ids=ALL_IDS)
def test_cli_satisfied_policy_prints_a_token(
    tmp_path: Path,
    replay: ReplayServer,
    case: Case,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # --sign: the CLI prints a token only when asked, signed by the local broker key in BROKER_DATA_DIR.
    accept = {"claims": {"tee": [case.tee]}, **case.accept}
    code, doc = _run(tmp_path, replay, case, accept, monkeypatch, capsys, "--sign")
    assert code == 0, doc
    assert doc["ear_status"] in ("affirming", "warning") and "error" not in doc
    assert doc["token"].count(".") == 2
    assert doc["claims"]["submods"][case.kind]["ear_appraisal_policy_ids"][0].startswith("cli-test@sha256:")
