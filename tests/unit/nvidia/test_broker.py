"""nvidia-gpu through the broker: HTTP attest, schema-valid token, revocation modes, audit records."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier

from tests.support.broker import make_harness
from tests.unit.nvidia.support import E2, E6, verify


def _attest(tmp_path: Path, body: dict[str, Any], **settings: Any) -> Any:
    h = make_harness(tmp_path, verifiers=[NvidiaGpuVerifier()], **settings)
    h.clock[0] = E2.now
    resp = h.api.handle(
        HttpRequest("POST", "/v1/attest/nvidia-gpu", {"content-type": "application/json"}, json.dumps(body).encode())
    )
    return h, resp


def _body(case: Any = E2) -> dict[str, Any]:
    return {
        "evidence": base64.b64encode(case.report_bytes()).decode(),
        "extras": [base64.b64encode(b).decode() for b in (case.chain_bytes(), *case.rim_bytes())],
    }


def test_http_attest_with_revocation_skipped_is_a_capped_schema_valid_token(tmp_path: Path) -> None:
    h, resp = _attest(tmp_path, _body(), revocation="skip", offline=True)
    assert resp.status == 200, resp.body
    claims = resp.json()["claims"]
    jsonschema.validate(claims, h.broker.schema)
    submod = claims["submods"]["nvidia-gpu"]
    assert submod["ear_status"] == "warning"
    assert submod["ear_trustworthiness_vector"]["hardware"] == 32
    assert submod["ear_trustworthiness_vector"]["executables"] == 2
    assert submod["ear_verifier_claims"]["revocation"] == "skipped"
    assert submod["ear_attester_claims"]["nvidia"]["devices"][0]["measurements"]["status"] == "match"
    assert h.sink.records[-1].verdict == "warning"


def test_missing_ocsp_is_collateral_unavailable(tmp_path: Path) -> None:
    h, resp = _attest(tmp_path, _body(), offline=True)
    assert resp.status == 503
    assert resp.json()["code"] == "COLLATERAL_UNAVAILABLE"
    assert h.sink.records[-1].error_code == "COLLATERAL_UNAVAILABLE"


def test_unknown_revocation_mode_is_a_config_error() -> None:
    with pytest.raises(BrokerError) as err:
        verify(E6.report_bytes(), (E6.chain_bytes(),), E6.now, revocation="sometimes")
    assert err.value.code.name == "CONFIG_INVALID"


def test_default_policy_refuses_a_measurement_mismatch(tmp_path: Path) -> None:
    from tests.unit.nvidia.support import E3

    body = {
        "evidence": base64.b64encode(E3.report_bytes()).decode(),
        "extras": [base64.b64encode(b).decode() for b in (E3.chain_bytes(), *E3.rim_bytes())],
    }
    h = make_harness(tmp_path, verifiers=[NvidiaGpuVerifier()], revocation="skip", offline=True)
    h.clock[0] = E3.now
    resp = h.api.handle(
        HttpRequest("POST", "/v1/attest/nvidia-gpu", {"content-type": "application/json"}, json.dumps(body).encode())
    )
    assert resp.status == 403
    assert resp.json()["code"] == "POLICY_REJECTED"
    assert "token" not in resp.json()


def test_default_policy_names() -> None:
    from attestation_broker.policy import default_policy

    assert default_policy("nvidia-gpu").name == "nvidia-gpu-default"
    assert default_policy("nvidia-token").name == "nvidia-token-default"
