"""A real composite CPU + GPU EAR token (SNP + two NVIDIA GPUs, test PKIs of tests/unit/nvidia) exchanges to a
federation token about the CPU: tee/measurement/policy from the ``snp`` submodule although the signed payload
lists ``nvidia-gpu-*`` first, status the worst of all devices."""

from __future__ import annotations

from pathlib import Path

import jwt
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.token.federation import FederationConfig

from tests.support.federation import AUDIENCES, AWS_AUDIENCE, exchange
from tests.support.replay import replay_server
from tests.unit.federation.test_conformance import check_token
from tests.unit.nvidia.test_composite import USER, _attest, _challenge, _gpus, _harness, _snp


def test_composite_cpu_gpu_token_federates_the_cpu(tmp_path: Path) -> None:
    with replay_server() as ocsp:
        h = _harness(tmp_path, ocsp)
        h.broker.federation = FederationConfig.from_settings(Settings(federation_audiences=AUDIENCES))
        nonce = _challenge(h)
        binding = ExpectedBinding(bytes.fromhex(nonce), USER)
        report, certs = _snp(binding)
        _devices, gpus = _gpus(ocsp, binding, 2)
        resp = _attest(h, nonce, report, certs, gpus)
        assert resp.status == 200, resp.body
        ear = resp.json()
    payload_order = list(jwt.decode(ear["token"], options={"verify_signature": False})["submods"])
    assert payload_order[0].startswith("nvidia-gpu-")  # the signed payload sorts keys
    snp = ear["claims"]["submods"]["snp"]
    for audience in AUDIENCES:
        exchanged = exchange(h, ear["token"], audience)
        assert exchanged.status == 200, exchanged.body
        claims = check_token(h, exchanged.json()["access_token"], audience, ear["claims"])
        assert claims["tee"] == "sev-snp" and claims["measurement"] == snp["ear_attester_claims"]["measurement"]
        assert (
            claims["policy"] == snp["ear_appraisal_policy_ids"][0]
            and claims["ear_status"] == ear["claims"]["ear_status"]
        )
        if audience == AWS_AUDIENCE:
            assert claims["https://aws.amazon.com/tags"]["principal_tags"]["tee"] == ["sev-snp"]
    assert [r.kind for r in h.sink.records if r.route == "/v1/token"] == ["snp"] * 3
