"""POST /v1/token (RFC 8693): issued tokens per audience, RFC 6749 §5.2 errors, one audit record per decision,
the exchange inside the attest call, and the operator configuration."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.token.federation import FederationConfig

from tests.support.broker import make_harness
from tests.support.federation import (
    AUDIENCES,
    AWS_AUDIENCE,
    AZURE_AUDIENCE,
    GCP_AUDIENCE,
    GRANT,
    JWT_TYPE,
    attest,
    exchange,
    federation_harness,
    form,
    token_request,
)


@pytest.fixture
def h(tmp_path: Path):  # type: ignore[no-untyped-def]
    return federation_harness(tmp_path)


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize(
    ("audience", "alg"), [(AWS_AUDIENCE, "ES256"), (GCP_AUDIENCE, "ES256"), (AZURE_AUDIENCE, "RS256")]
)
def test_exchange_issues_a_flat_token_for_each_allowed_audience(h, audience: str, alg: str) -> None:  # type: ignore[no-untyped-def]
    ear = attest(h)
    h.clock[0] += timedelta(seconds=100)
    h.sink.records.clear()
    resp = exchange(h, ear["token"], audience)
    assert resp.status == 200, resp.body
    assert resp.headers["cache-control"] == "no-store" and resp.headers["pragma"] == "no-cache"
    doc = resp.json()
    assert set(doc) == {"access_token", "issued_token_type", "token_type", "expires_in"}
    assert (doc["issued_token_type"], doc["token_type"]) == (JWT_TYPE, "N_A")
    # The subject token has 200 s left; the federation token never outlives it.
    assert doc["expires_in"] == 200
    header, claims = unverified(doc["access_token"])
    assert header["alg"] == alg
    assert claims["aud"] == audience and claims["iss"] == "https://broker.test"
    assert claims["exp"] == ear["claims"]["exp"]
    assert claims["sub"] == "test" == claims["policy_name"]
    assert claims["policy"] == ear["claims"]["submods"]["test-echo"]["ear_appraisal_policy_ids"][0]
    assert claims["policy"].startswith("test@sha256:")
    assert claims["eat_nonce"] == ear["claims"]["eat_nonce"]
    assert (claims["ear_status"], claims["tee"]) == ("affirming", "sev-snp")
    assert claims["measurement"] == ear["claims"]["submods"]["test-echo"]["ear_attester_claims"]["measurement"]
    assert "submods" not in claims
    if audience == AWS_AUDIENCE:
        assert claims["https://aws.amazon.com/tags"] == {
            "principal_tags": {
                "ear_status": ["affirming"],
                "tee": ["sev-snp"],
                "platform": ["unknown"],
                "policy": [claims["policy"]],
            }
        }
    else:
        assert "https://aws.amazon.com/tags" not in claims
    [record] = h.sink.records
    assert (record.route, record.verdict, record.audience, record.kind) == (
        "/v1/token",
        "affirming",
        audience,
        "test-echo",
    )
    assert record.token_jti == claims["jti"] and record.error_code is None


def _refused(h, ear: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    claims = json.loads(json.dumps(ear["claims"]))
    claims["ear_status"] = "contraindicated"
    claims["submods"]["test-echo"]["ear_status"] = "contraindicated"
    return str(h.broker.tokens.sign(claims))


def _no_policy(h, ear: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    claims = json.loads(json.dumps(ear["claims"]))
    claims["submods"]["test-echo"]["ear_appraisal_policy_ids"] = []
    return str(h.broker.tokens.sign(claims))


def _no_submods(h, ear: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    claims = {k: v for k, v in ear["claims"].items() if k != "submods"}
    return str(h.broker.tokens.sign(claims))


def _tampered(h, ear: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    head, payload, sig = ear["token"].split(".")
    claims = jwt.utils.base64url_decode(payload)
    forged = jwt.utils.base64url_encode(claims.replace(b'"affirming"', b'"warning"  ')).decode()
    return f"{head}.{forged}.{sig}"


def _federation_token(h, ear: dict[str, Any]) -> str:  # type: ignore[no-untyped-def]
    return str(exchange(h, ear["token"], GCP_AUDIENCE).json()["access_token"])


SUBJECT_CASES = {
    "tampered": (_tampered, "TOKEN_INVALID"),
    "refused (contraindicated)": (_refused, "FEDERATION_SUBJECT_REFUSED"),
    "no policy named": (_no_policy, "FEDERATION_SUBJECT_REFUSED"),
    "not an EAR token": (_no_submods, "FEDERATION_SUBJECT_REFUSED"),
    "a federation token as subject": (_federation_token, "TOKEN_INVALID"),
    "not a JWT": (lambda h, ear: "not-a-jwt", "TOKEN_MALFORMED"),
}


@pytest.mark.parametrize("case", list(SUBJECT_CASES))
def test_bad_or_refused_subject_tokens_are_invalid_grant(h, case: str) -> None:  # type: ignore[no-untyped-def]
    make, code = SUBJECT_CASES[case]
    subject = make(h, attest(h))
    h.sink.records.clear()
    resp = exchange(h, subject, AWS_AUDIENCE)
    assert resp.status == 400
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["error"] == "invalid_grant" and "access_token" not in body
    assert set(body) == {"error", "error_description"}
    [record] = h.sink.records
    assert (record.verdict, record.error_code, record.token_jti) == ("error", code, None)


def test_expired_subject_token_is_invalid_grant(h) -> None:  # type: ignore[no-untyped-def]
    ear = attest(h)
    h.clock[0] += timedelta(seconds=301)
    h.sink.records.clear()
    resp = exchange(h, ear["token"], AZURE_AUDIENCE)
    assert (resp.status, resp.json()["error"]) == (400, "invalid_grant")
    assert [r.error_code for r in h.sink.records] == ["TOKEN_EXPIRED"]


def _params(**overrides: str | None) -> dict[str, str]:
    base = {"grant_type": GRANT, "subject_token": "x.y.z", "subject_token_type": JWT_TYPE, "audience": AWS_AUDIENCE}
    for key, value in overrides.items():
        if value is None:
            base.pop(key)
        else:
            base[key] = value
    return base


REQUEST_CASES: dict[str, tuple[bytes, str, str]] = {
    "audience not allowed": (
        form(**_params(audience="https://example.com")),
        "invalid_target",
        "FEDERATION_AUDIENCE_NOT_ALLOWED",
    ),
    "other grant type": (
        form(**_params(grant_type="client_credentials")),
        "unsupported_grant_type",
        "FEDERATION_GRANT_UNSUPPORTED",
    ),
    "no grant type": (form(**_params(grant_type=None)), "invalid_request", "FEDERATION_REQUEST_INVALID"),
    "no subject token": (form(**_params(subject_token=None)), "invalid_request", "FEDERATION_REQUEST_INVALID"),
    "no audience": (form(**_params(audience=None)), "invalid_request", "FEDERATION_REQUEST_INVALID"),
    "subject token type": (
        form(**_params(subject_token_type="urn:ietf:params:oauth:token-type:access_token")),
        "invalid_request",
        "FEDERATION_REQUEST_INVALID",
    ),
    "requested token type": (
        form(**_params(requested_token_type="urn:ietf:params:oauth:token-type:access_token")),
        "invalid_request",
        "FEDERATION_REQUEST_INVALID",
    ),
    "two audiences": (
        form(**_params()) + b"&audience=" + GCP_AUDIENCE.encode(),
        "invalid_request",
        "FEDERATION_REQUEST_INVALID",
    ),
    "resource indicator": (
        form(**_params(resource="https://storage.example")),
        "invalid_request",
        "FEDERATION_REQUEST_INVALID",
    ),
    "actor token": (form(**_params(actor_token="a.b.c")), "invalid_request", "FEDERATION_REQUEST_INVALID"),
    "not a form": (b"grant_type", "invalid_request", "FEDERATION_REQUEST_INVALID"),
    "not ascii": ("audience=é".encode(), "invalid_request", "FEDERATION_REQUEST_INVALID"),
}


@pytest.mark.parametrize("case", list(REQUEST_CASES))
def test_malformed_or_disallowed_requests_get_rfc6749_errors(h, case: str) -> None:  # type: ignore[no-untyped-def]
    body, error, code = REQUEST_CASES[case]
    resp = h.api.handle(token_request(body))
    assert (resp.status, resp.json()["error"]) == (400, error), resp.body
    assert set(resp.json()) == {"error", "error_description"}
    assert [(r.route, r.error_code) for r in h.sink.records] == [("/v1/token", code)]


def test_json_body_is_invalid_request_not_problem_json(h) -> None:  # type: ignore[no-untyped-def]
    resp = h.api.handle(token_request(json.dumps(_params()).encode(), ctype="application/json"))
    assert (resp.status, resp.headers["content-type"], resp.json()["error"]) == (
        400,
        "application/json",
        "invalid_request",
    )


def test_wrong_method_answers_in_oauth_form(h) -> None:  # type: ignore[no-untyped-def]
    resp = h.api.handle(token_request(b"", method="GET"))
    assert (resp.status, resp.json()["error"]) == (405, "invalid_request")


def test_nothing_is_allowed_by_default(tmp_path: Path) -> None:
    h = make_harness(tmp_path)
    resp = exchange(h, attest(h)["token"], AZURE_AUDIENCE)
    assert (resp.status, resp.json()["error"]) == (400, "invalid_target")


def test_attest_call_can_return_a_federation_token(h) -> None:  # type: ignore[no-untyped-def]
    doc = attest(h, audience=AZURE_AUDIENCE)
    header, claims = unverified(doc["federation_token"])
    assert header["alg"] == "RS256" and claims["aud"] == AZURE_AUDIENCE
    assert claims["eat_nonce"] == doc["claims"]["eat_nonce"] and doc["federation_expires_in"] == 300
    assert doc["federation_claims"] == claims
    # Two decisions, two records: the attestation and the federation token.
    assert [(r.route, r.audience, r.verdict) for r in h.sink.records if r.route.startswith("/v1/attest")] == [
        ("/v1/attest/test-echo", None, "affirming"),
        ("/v1/attest/test-echo", AZURE_AUDIENCE, "affirming"),
    ]


def test_attest_call_with_a_disallowed_audience_is_refused_before_verification(h) -> None:  # type: ignore[no-untyped-def]
    import base64

    from attestation_broker.api.http import HttpRequest

    body = json.dumps({"evidence": base64.b64encode(b"x" * 40).decode(), "audience": "https://elsewhere"}).encode()
    resp = h.api.handle(HttpRequest("POST", "/v1/attest/test-echo", {"content-type": "application/json"}, body))
    assert (resp.status, resp.json()["code"]) == (400, "FEDERATION_AUDIENCE_NOT_ALLOWED")


def test_configured_audience_overrides_defaults(tmp_path: Path) -> None:
    config = {
        "audiences": {
            "arn:aws:iam::123456789012:oidc-provider/broker": {
                "cloud": "aws",
                "algorithm": "RS256",
                "sub": "{tee}/{policy_name}",
                "ttl_seconds": 120,
                "tags": ["ear_status", "measurement"],
                "transitive_tags": ["ear_status"],
            }
        }
    }
    path = tmp_path / "federation.json"
    path.write_text(json.dumps(config))
    h = make_harness(tmp_path, federation_config=str(path))
    resp = exchange(h, attest(h)["token"], "arn:aws:iam::123456789012:oidc-provider/broker")
    assert resp.status == 200, resp.body
    header, claims = unverified(resp.json()["access_token"])
    assert header["alg"] == "RS256" and claims["sub"] == "sev-snp/test"
    assert claims["exp"] - claims["iat"] == 120 == resp.json()["expires_in"]
    tags = claims["https://aws.amazon.com/tags"]
    assert set(tags["principal_tags"]) == {"ear_status", "measurement"} and tags["transitive_tag_keys"] == [
        "ear_status"
    ]


BAD_CONFIGS = {
    "azure with ES256": {AZURE_AUDIENCE: {"algorithm": "ES256"}},
    "unknown key": {AWS_AUDIENCE: {"subject": "x"}},
    "tags outside aws": {GCP_AUDIENCE: {"tags": ["tee"]}},
    "unknown tag": {AWS_AUDIENCE: {"tags": ["instance_id"]}},
    "transitive not a tag": {AWS_AUDIENCE: {"tags": ["tee"], "transitive_tags": ["platform"]}},
    "ttl too long": {AWS_AUDIENCE: {"ttl_seconds": 86400}},
    "ttl not an integer": {AWS_AUDIENCE: {"ttl_seconds": "900"}},
    "sub names unknown field": {AWS_AUDIENCE: {"sub": "{instance_id}"}},
    "unknown algorithm": {AWS_AUDIENCE: {"algorithm": "HS256"}},
    "unknown cloud": {AWS_AUDIENCE: {"cloud": "oracle"}},
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_federation_config_fails_at_start(case: str) -> None:
    settings = Settings(federation_config=json.dumps({"audiences": BAD_CONFIGS[case]}))
    with pytest.raises(BrokerError) as info:
        FederationConfig.from_settings(settings)
    assert info.value.code.name == "CONFIG_INVALID"


def test_env_form_allows_audiences_and_picks_rs256_for_entra() -> None:
    settings = Settings.from_env({"BROKER_FEDERATION_AUDIENCES": ",".join(AUDIENCES)})
    rules = FederationConfig.from_settings(settings).rules
    assert {a: (r.cloud, r.algorithm, bool(r.tags)) for a, r in rules.items()} == {
        AWS_AUDIENCE: ("aws", "ES256", True),
        GCP_AUDIENCE: ("gcp", "ES256", False),
        AZURE_AUDIENCE: ("azure", "RS256", False),
    }


def test_rs256_audience_without_an_rs256_key_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as info:
        make_harness(tmp_path, federation_audiences=(AZURE_AUDIENCE,), signer_rs256="off")
    assert info.value.code.name == "CONFIG_INVALID"


def test_sub_over_127_bytes_is_refused_not_truncated(tmp_path: Path) -> None:
    config = {"audiences": {GCP_AUDIENCE: {"sub": "{measurement}{measurement}"}}}
    h = make_harness(tmp_path, federation_config=json.dumps(config))
    resp = exchange(h, attest(h)["token"], GCP_AUDIENCE)
    assert (resp.status, resp.json()["error"]) == (500, "server_error")
    assert [r.error_code for r in h.sink.records if r.route == "/v1/token"] == ["FEDERATION_CLAIM_LIMIT"]


def test_composite_token_federates_the_cpu_submodule_whatever_the_key_order(h) -> None:  # type: ignore[no-untyped-def]
    ear = attest(h)
    claims = json.loads(json.dumps(ear["claims"]))
    cpu = claims["submods"]["test-echo"]
    gpu = json.loads(json.dumps(cpu))
    gpu["ear_attester_claims"].update(tee="nvidia-cc", measurement="ab" * 48)
    gpu["ear_appraisal_policy_ids"] = ["gpu-policy"]
    # Keys sort "nvidia-gpu-0" before the CPU kind in the signed payload, as in composite CPU + GPU tokens.
    claims["submods"] = {"nvidia-gpu-0": gpu, "test-echo": cpu}
    claims["sub"] = "test-echo:measurement:" + cpu["ear_attester_claims"]["measurement"]
    h.sink.records.clear()
    resp = exchange(h, h.broker.tokens.sign(claims), AWS_AUDIENCE)
    assert resp.status == 200, resp.body
    _, federated = unverified(resp.json()["access_token"])
    assert (federated["tee"], federated["sub"]) == ("sev-snp", "test")
    assert [r.kind for r in h.sink.records] == ["test-echo"]
    # A GPU that is contraindicated makes the whole result refused.
    gpu["ear_status"] = claims["ear_status"] = "contraindicated"
    assert exchange(h, h.broker.tokens.sign(claims), AWS_AUDIENCE).json()["error"] == "invalid_grant"
