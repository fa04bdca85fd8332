"""The issuance contract for all eight evidence kinds, over HTTP (the shared router) and the Lambda handler,
on real vectors (docs/policy.md "Issuance contract"):

- under a policy the evidence does not satisfy: 403 ``POLICY_REJECTED`` (problem+json) naming the failed rule
  with expected/actual values, no token, exactly one audit record (no ``token_jti``);
- under the kind's built-in default: a token only for affirming/warning (the debug Confidential Space token
  and the unpinned TPM quote are refused);
- under a policy the evidence satisfies: 200 with a token whose ``/v1/verify`` answer is ``valid: true`` and
  whose ``ear_appraisal_policy_ids`` names that policy.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.api.routes import Api
from attestation_broker.registry import default_registry
from attestation_broker.trust.fetch import Fetcher, HttpFetcher
from attestation_broker.verifier import Verifier

from tests.functional.test_lambda_handlers import call, event
from tests.support.broker import Harness, make_harness
from tests.support.replay import ReplayServer
from tests.support.vectors import vector

AK_PIN = "02e54c432678997b9adf4e369097e990ccf576fb785fd4cc5fc2d185b1d4dc86"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Case:
    kind: str
    tee: str
    body: Callable[[], dict[str, Any]]
    now: Callable[[], datetime]
    default_issues: bool
    verifier: Callable[[ReplayServer], Verifier] | None = None
    settings: Callable[[ReplayServer], dict[str, Any]] = field(default=lambda _r: {})
    accept: dict[str, Any] = field(default_factory=dict)


def _snp() -> dict[str, Any]:
    return {
        "evidence": b64(vector("snp/trustee-milan-v2/test-report.bin")),
        "extras": [b64(vector("snp/trustee-milan-v2/test-vcek.der")), b64(vector("roots/amd/amd_milan_vcek_crl.pem"))],
    }


def _tdx() -> dict[str, Any]:
    from tests.unit.tdx.support import dcap_json, quote_bytes

    return {"evidence": b64(quote_bytes("D6")), "collateral": json.loads(dcap_json("D6"))}


def _tpm() -> dict[str, Any]:
    return {
        "evidence": b64(vector("tpm/azure-vtpm-quote-nonce010203.msg")),
        "extras": [
            b64(vector("tpm/azure-vtpm-quote-nonce010203.sig")),
            b64(vector("tpm/azure-vtpm-quote-nonce010203.akpub.pem")),
        ],
    }


def _azure_vtpm_settings(replay: ReplayServer) -> dict[str, Any]:
    from tests.unit.azure_vtpm.support import serve_kds

    serve_kds(replay)
    return {"amd_kds_url": replay.base_url}


def _gcp_token(replay: ReplayServer) -> Verifier:
    from attestation_broker.evidence.gcp_token.kind import GcpTokenVerifier

    from tests.unit.tokens.helpers import serve_google

    return GcpTokenVerifier(key_url_override=serve_google(replay))


def _azure_token(replay: ReplayServer) -> Verifier:
    from attestation_broker.evidence.azure_token.kind import AzureTokenVerifier

    from tests.unit.tokens.helpers import WEU, serve_maa

    return AzureTokenVerifier(key_url_override=serve_maa(replay, WEU))


def _at(ts: str) -> Callable[[], datetime]:
    return lambda: datetime.fromisoformat(ts)


def _nitro_now() -> datetime:
    from tests.unit.nitro.support import NONDEBUG

    return NONDEBUG.now


def _token_now(name: str) -> Callable[[], datetime]:
    def now() -> datetime:
        from tests.unit.tokens import helpers

        return helpers.at(getattr(helpers, name) + 5)

    return now


CASES = [
    Case("snp", "sev-snp", _snp, _at("2025-06-01T00:00:00+00:00"), True),
    Case("tdx", "tdx", _tdx, lambda: __import__("tests.unit.tdx.support", fromlist=["NOW_D6"]).NOW_D6, True),
    Case("nitro", "nitro", lambda: {"evidence": b64(vector("nitro/evervault-nondebug-2022-10-13.cose"))}, _nitro_now, True),
    Case("tpm", "vtpm", _tpm, _at("2024-03-01T00:00:00+00:00"), False,
         accept={"ak_keys": [{"label": "azure-vtpm-ak", "sha256": AK_PIN}]}),
    Case("gcp-vtpm", "vtpm",
         lambda: {"evidence": b64(vector("gcp/gce-cos-85-nonce9009.attestation.pb")),
                  "extras": [b64(vector("gcp/gce-ca-tpm_ek_intermediate_2.crt"))]},
         _at("2026-11-22T00:00:00+00:00"), True),
    Case("azure-vtpm", "sev-snp",
         lambda: {"evidence": b64(vector("azure/az-snp-vtpm-evidence-v1-26F8BC30.json"))},
         lambda: __import__("tests.unit.azure_vtpm.support", fromlist=["NOW_MILAN"]).NOW_MILAN, True,
         settings=_azure_vtpm_settings),
    Case("gcp-token", "sev-snp", lambda: {"evidence": b64(vector("gcp/cs-oidc-token-flare-2024-11-03.jwt"))},
         _token_now("OIDC_IAT"), False, verifier=_gcp_token, accept={"debug": "allowed"}),
    Case("azure-token", "sev-snp",
         lambda: {"evidence": b64(vector("azure/maa-cvm-sevsnp-sharedweu-2023-03-30.jwt"))},
         _token_now("MAA_WEU_IAT"), True, verifier=_azure_token),
]  # fmt: skip
IDS = [c.kind for c in CASES]


def _harness(tmp_path: Path, replay: ReplayServer, case: Case, policy: dict[str, Any] | None) -> Harness:
    verifier = case.verifier(replay) if case.verifier else default_registry()[case.kind]
    fetcher: Fetcher = HttpFetcher()
    h = make_harness(
        tmp_path, verifiers=[verifier], fetcher=fetcher, policy=policy, require_nonce=False, **case.settings(replay)
    )
    h.clock[0] = case.now()
    return h


def _attest(h: Harness, case: Case) -> tuple[int, dict[str, Any]]:
    body = json.dumps(case.body()).encode()
    resp = h.api.handle(HttpRequest("POST", f"/v1/attest/{case.kind}", {"content-type": "application/json"}, body))
    return resp.status, resp.json()


def _attest_records(h: Harness) -> list[Any]:
    return [r for r in h.sink.records if r.route.startswith("/v1/attest")]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unsatisfied_policy_is_403_without_a_token(tmp_path: Path, replay: ReplayServer, case: Case) -> None:
    rules = {"reference_values": [{"label": "other-workload", "claims": {"tee": "none-such"}}]}
    h = _harness(tmp_path, replay, case, {case.kind: rules})
    status, doc = _attest(h, case)
    assert status == 403 and doc["code"] == "POLICY_REJECTED", doc
    assert "token" not in doc and "claims" not in doc
    rule = doc["failed_rules"][0]
    assert (rule["policy"], rule["rule"], rule["actual"]) == (
        f"{case.kind}-test",
        "reference_values",
        {"tee": case.tee},
    )
    assert rule["expected"] == {"other-workload": {"tee": "none-such"}}
    (record,) = _attest_records(h)
    assert (record.error_code, record.http_status, record.token_jti) == ("POLICY_REJECTED", 403, None)
    assert record.policy_ids[0].startswith(f"{case.kind}-test@sha256:") and "reference_values" in record.failed_rules


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_builtin_default(tmp_path: Path, replay: ReplayServer, case: Case) -> None:
    h = _harness(tmp_path, replay, case, None)
    status, doc = _attest(h, case)
    if case.default_issues:
        assert status == 200, doc
        assert doc["claims"]["ear_status"] in ("affirming", "warning")
        policy_id = doc["claims"]["submods"][case.kind]["ear_appraisal_policy_ids"][0]
        assert policy_id.startswith(f"{case.kind}-default@sha256:")
    else:
        assert status == 403 and doc["code"] == "POLICY_REJECTED" and "token" not in doc
        assert doc["failed_rules"][-1]["rule"] == "trustworthiness"
        assert doc["failed_rules"][-1]["actual"]["ear_status"] == "contraindicated"
    assert len(_attest_records(h)) == 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_satisfied_policy_issues_a_valid_token(tmp_path: Path, replay: ReplayServer, case: Case) -> None:
    rules = {"claims": {"tee": [case.tee]}, **case.accept}
    h = _harness(tmp_path, replay, case, {case.kind: rules})
    status, doc = _attest(h, case)
    assert status == 200, doc
    assert doc["claims"]["submods"][case.kind]["ear_appraisal_policy_ids"][0].startswith(f"{case.kind}-test@")
    check = h.api.handle(
        HttpRequest(
            "POST", "/v1/verify", {"content-type": "application/json"}, json.dumps({"token": doc["token"]}).encode()
        )
    )
    assert check.status == 200 and check.json()["valid"] is True
    (record,) = _attest_records(h)
    assert record.token_jti == doc["claims"]["jti"] and record.error_code is None


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_lambda_handler_refuses_the_same_way(
    tmp_path: Path, replay: ReplayServer, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions import _http

    rules = {"reference_values": [{"label": "other-workload", "claims": {"tee": "none-such"}}]}
    h = _harness(tmp_path, replay, case, {case.kind: rules})
    monkeypatch.setattr(_http, "api", lambda: Api(h.broker))
    body = json.dumps(case.body()).encode()
    status, headers, doc = call("attest", event("POST", f"/v1/attest/{case.kind}", body, route="/v1/attest/{kind}"))
    assert status == 403 and headers["content-type"] == "application/problem+json"
    assert doc["code"] == "POLICY_REJECTED" and "token" not in doc
    assert doc["failed_rules"][0]["rule"] == "reference_values"
    assert len(_attest_records(h)) == 1
