"""Composite CPU + GPU over the HTTP router: one SEV-SNP report (test-only AMD hierarchy) and NVIDIA GPUs
(test-only NVIDIA hierarchy, real E1 measurements and RIMs, OCSP on a loopback responder), all bound to one
broker nonce, yield one token with one submod per device; a GPU bound to another nonce refuses everything."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier
from attestation_broker.evidence.snp.kind import SnpVerifier
from attestation_broker.trust.fetch import HttpFetcher

from tests.support.broker import Harness, make_harness
from tests.support.nvidia_pki import Device, fake_nvidia, ocsp_target, resign, resigned_rims, rim_signer
from tests.support.replay import ReplayServer, replay_server
from tests.unit.nvidia.support import E1, sdk_list
from tests.unit.snp.support import build_report, fake_amd

NOW = datetime(2025, 6, 1, tzinfo=UTC)  # inside E1's RIM validity and the test AMD CRL's window
CHIP = bytes.fromhex("1e550a8ee5cf9f4d") + bytes(56)
TCB = {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 5}
USER = b"model-serving key"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def ocsp() -> Iterator[ReplayServer]:
    with replay_server() as server:
        yield server


def _harness(tmp_path: Path, server: ReplayServer, policy: dict[str, Any] | None = None) -> Harness:
    h = make_harness(
        tmp_path,
        verifiers=[SnpVerifier(trust=fake_amd().trust), NvidiaGpuVerifier(roots=fake_nvidia().roots)],
        fetcher=HttpFetcher(),
        policy=policy,
        nvidia_ocsp_url=server.base_url,
        nvidia_rim_url=server.base_url,
    )
    h.clock[0] = NOW
    return h


def _gpus(server: ReplayServer, binding: ExpectedBinding, count: int) -> tuple[list[Device], bytes]:
    pki = fake_nvidia()
    template = bytes.fromhex(E1.report_bytes().decode())
    devices = [pki.device() for _ in range(count)]
    for device in devices:
        for index in range(len(device.certs)):
            server.add(ocsp_target(device, index, pki.root), pki.ocsp_response(device, index))
    signer = rim_signer()  # E1's RIMs re-signed under the test CoRIM root: their signer chain is OCSP-checked too
    for index in range(len(signer.certs)):
        server.add(ocsp_target(signer, index, pki.rim_root), pki.ocsp_response(signer, index))
    body = sdk_list([(resign(template, d, binding.spdm_nonce()), d.chain_pem) for d in devices])
    return devices, body


def _snp(binding: ExpectedBinding) -> tuple[bytes, list[bytes]]:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TCB)
    return build_report(key, chip_id=CHIP, tcb=TCB, report_data=binding.report_data()), [vcek, amd.crl()]


def _attest(h: Harness, nonce: str, report: bytes, certs: list[bytes], gpus: bytes, **gpu_fields: Any) -> Any:
    extras = [b64(r) for r in resigned_rims(*E1.rim_bytes())]
    body = {
        "evidence": b64(report),
        "extras": [b64(c) for c in certs],
        "nonce": nonce,
        "user_data": b64(USER),
        "gpus": {"evidence": b64(gpus), "extras": extras, **gpu_fields},
    }
    return h.api.handle(
        HttpRequest("POST", "/v1/attest/snp", {"content-type": "application/json"}, json.dumps(body).encode())
    )


def _challenge(h: Harness) -> str:
    resp = h.api.handle(HttpRequest("POST", "/v1/challenge", {}, b""))
    nonce: str = resp.json()["nonce"]
    return nonce


def test_composite_snp_and_two_gpus_yield_one_token(tmp_path: Path, ocsp: ReplayServer) -> None:
    rules = {
        "conditions": [
            {"name": "gpus", "expr": "verifier.composite.gpus >= 2"},
            {
                "name": "driver",
                "expr": 'claims.nvidia.devices.all(d, d.type == "switch" || d.driver_version >= "545.00")',
            },
        ]
    }
    h = _harness(tmp_path, ocsp, policy={"nvidia-gpu": rules})
    nonce = _challenge(h)
    binding = ExpectedBinding(bytes.fromhex(nonce), USER)
    report, certs = _snp(binding)
    _devices, gpus = _gpus(ocsp, binding, 2)
    resp = _attest(h, nonce, report, certs, gpus)
    assert resp.status == 200, resp.body
    claims = resp.json()["claims"]
    jsonschema.validate(claims, h.broker.schema)
    assert sorted(claims["submods"]) == ["nvidia-gpu-0", "nvidia-gpu-1", "snp"]
    assert claims["eat_nonce"] == nonce
    for name in ("nvidia-gpu-0", "nvidia-gpu-1"):
        submod = claims["submods"][name]
        device = submod["ear_attester_claims"]["nvidia"]["devices"]
        assert len(device) == 1
        assert device[0]["nonce"] == binding.spdm_nonce().hex()
        assert device[0]["measurements"]["status"] == "match"
        assert submod["ear_verifier_claims"]["bindings"] == {"nonce": "checked"}
        assert submod["ear_verifier_claims"]["revocation"] == "checked"
        assert submod["ear_status"] == "affirming"
    assert claims["submods"]["snp"]["ear_verifier_claims"]["bindings"] == {"nonce": "checked"}
    statuses = [s["ear_status"] for s in claims["submods"].values()]
    order = ["none", "affirming", "warning", "contraindicated"]
    assert claims["ear_status"] == max(statuses, key=order.index)
    assert len(h.sink.records) == 2 and h.sink.records[-1].verdict == claims["submods"]["snp"]["ear_status"]


def test_gpu_bound_to_another_nonce_refuses_the_whole_request(tmp_path: Path, ocsp: ReplayServer) -> None:
    h = _harness(tmp_path, ocsp)
    nonce = _challenge(h)
    binding = ExpectedBinding(bytes.fromhex(nonce), USER)
    report, certs = _snp(binding)
    _devices, gpus = _gpus(ocsp, ExpectedBinding(bytes.fromhex(_challenge(h)), USER), 1)
    resp = _attest(h, nonce, report, certs, gpus)
    assert resp.status == 403
    assert resp.json()["code"] == "NONCE_BINDING_MISMATCH"
    assert "token" not in resp.json()
    assert h.sink.records[-1].error_code == "NONCE_BINDING_MISMATCH"


def test_gpu_count_policy(tmp_path: Path, ocsp: ReplayServer) -> None:
    rules = {"conditions": [{"name": "gpus", "expr": "verifier.composite.gpus >= 2"}]}
    h = _harness(tmp_path, ocsp, policy={"nvidia-gpu": rules})
    nonce = _challenge(h)
    binding = ExpectedBinding(bytes.fromhex(nonce), USER)
    report, certs = _snp(binding)
    _devices, gpus = _gpus(ocsp, binding, 1)
    resp = _attest(h, nonce, report, certs, gpus)
    assert (resp.status, resp.json()["code"]) == (403, "POLICY_REJECTED")
    assert [r["rule"] for r in resp.json()["failed_rules"]] == ["conditions.gpus"]
    assert "token" not in resp.json() and h.sink.records[-1].failed_rules == ("conditions.gpus",)


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        ('claims.nvidia.devices.all(d, d.feature_flag == "PPCIE")', "POLICY_REJECTED"),  # E1 predates the flag
        ('claims.nvidia.devices.all(d, d.driver_version >= "550.0")', "POLICY_REJECTED"),
        ('claims.nvidia.devices.all(d, d.vbios_version >= "96.00.9F.00.00")', "POLICY_REJECTED"),
        ('claims.nvidia.devices.all(d, d.driver_version >= "535.0")', None),
    ],
)
def test_gpu_version_and_mode_policy(tmp_path: Path, ocsp: ReplayServer, expr: str, code: str | None) -> None:
    h = _harness(tmp_path, ocsp, policy={"nvidia-gpu": {"conditions": [{"name": "gpu", "expr": expr}]}})
    nonce = _challenge(h)
    binding = ExpectedBinding(bytes.fromhex(nonce), USER)
    report, certs = _snp(binding)
    _devices, gpus = _gpus(ocsp, binding, 1)
    resp = _attest(h, nonce, report, certs, gpus)
    assert resp.json().get("code") == code
    if code is not None:
        assert [r["rule"] for r in resp.json()["failed_rules"]] == ["conditions.gpu"]


def test_gpus_field_only_with_a_cpu_kind(tmp_path: Path, ocsp: ReplayServer) -> None:
    h = _harness(tmp_path, ocsp)
    body = {"evidence": b64(b"x"), "gpus": {"evidence": b64(b"y")}}
    resp = h.api.handle(
        HttpRequest("POST", "/v1/attest/nvidia-gpu", {"content-type": "application/json"}, json.dumps(body).encode())
    )
    assert (resp.status, resp.json()["code"]) == (400, "MALFORMED_REQUEST")


def test_gpu_part_is_an_nvidia_gpu_envelope(tmp_path: Path, ocsp: ReplayServer) -> None:
    """The ``gpus`` object goes through the nvidia-gpu declaration of the shared input collector: a single
    raw report with its chain as the ``certificate_chain`` field verifies; unknown members, a chain beside an
    SDK list and base64 that breaks the one rule are refused with the same codes as a direct submission."""
    h = _harness(tmp_path, ocsp)
    nonce = _challenge(h)
    binding = ExpectedBinding(bytes.fromhex(nonce), USER)
    report, certs = _snp(binding)
    (device,), gpus = _gpus(ocsp, binding, 1)
    single = resign(bytes.fromhex(E1.report_bytes().decode()), device, binding.spdm_nonce())
    resp = _attest(h, nonce, report, certs, single, certificate_chain=device.chain_pem.decode())
    assert resp.status == 200, resp.body
    assert sorted(resp.json()["claims"]["submods"]) == ["nvidia-gpu-0", "snp"]
    for fields, code in [
        ({"colateral": {}}, "INPUT_FIELD_UNKNOWN"),
        ({"certificate_chain": device.chain_pem.decode()}, "INPUT_ROLE_DUPLICATE"),
        ({"extras": ["+_8="]}, "MALFORMED_REQUEST"),
    ]:
        nonce = _challenge(h)
        binding = ExpectedBinding(bytes.fromhex(nonce), USER)
        report, certs = _snp(binding)
        _devices, gpus = _gpus(ocsp, binding, 1)
        resp = _attest(h, nonce, report, certs, gpus, **fields)
        assert (resp.status, resp.json()["code"]) == (400, code), fields
        assert "token" not in resp.json()
        assert h.sink.records[-1].error_code == code
