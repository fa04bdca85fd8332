"""The shared router: routes, limits, content types, error mapping, correlation ids, audit records."""

import base64
import json
from datetime import timedelta

import jsonschema
import jwt
import pytest
from attestation_broker.api.http import HttpRequest

from tests.support.broker import make_harness


def req(method: str, path: str, body: bytes | dict | None = None, ctype: str | None = None, **headers: str):
    if isinstance(body, dict):
        body, ctype = json.dumps(body).encode(), ctype or "application/json"
    hdrs = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    if ctype:
        hdrs["content-type"] = ctype
    return HttpRequest(method, path, hdrs, body or b"")


@pytest.fixture
def h(tmp_path):  # type: ignore[no-untyped-def]
    return make_harness(tmp_path)


def attest_body(h, *, debug: bool = False, nonce: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    from attestation_broker.binding import ExpectedBinding

    if nonce is None:
        nonce = h.api.handle(req("POST", "/v1/challenge")).json()["nonce"]
    bound = ExpectedBinding(bytes.fromhex(nonce)).tpm_extra_data()
    evidence = bound + (b"D" if debug else b"-")
    return {"evidence": base64.b64encode(evidence).decode(), "nonce": nonce}


def test_challenge_attest_verify_flow(h) -> None:  # type: ignore[no-untyped-def]
    challenge = h.api.handle(req("POST", "/v1/challenge"))
    assert challenge.status == 200
    nonce = challenge.json()["nonce"]
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", attest_body(h, nonce=nonce), x_correlation_id="abc-1"))
    assert resp.status == 200, resp.body
    assert resp.headers["x-correlation-id"] == "abc-1"
    token, claims = resp.json()["token"], resp.json()["claims"]
    assert claims["eat_nonce"] == nonce
    assert claims["ear_status"] == "affirming"
    jsonschema.validate(claims, h.api.handle(req("GET", "/v1/schema")).json())
    # Any JWT library can verify through the published JWKS.
    jwks = h.api.handle(req("GET", "/jwks")).json()
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]].key
    assert (
        jwt.decode(
            token,
            key,
            algorithms=["ES256"],
            audience="attestation-broker",
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )["jti"]
        == claims["jti"]
    )
    verified = h.api.handle(req("POST", "/v1/verify", {"token": token}))
    assert verified.status == 200 and verified.json()["claims"] == claims
    raw = h.api.handle(req("POST", "/v1/verify", token.encode(), "application/jwt"))
    assert raw.status == 200
    # one audit record per request on a decision route: challenge + attest + 2 verifies
    assert [r.verdict for r in h.sink.records] == ["none", "affirming", "affirming", "affirming"]
    assert h.sink.records[0].route == "/v1/challenge" and h.sink.records[0].kind is None
    record = h.sink.records[1]
    assert record.correlation_id == "abc-1" and record.kind == "test-echo" and record.token_jti == claims["jti"]
    assert record.evidence_sha256 and len(record.evidence_sha256) == 64
    assert record.claims_summary["tcb_status"] == "UpToDate"


def test_replayed_nonce_and_binding_mismatch(h) -> None:  # type: ignore[no-untyped-def]
    body = attest_body(h)
    assert h.api.handle(req("POST", "/v1/attest/test-echo", body)).status == 200
    replay = h.api.handle(req("POST", "/v1/attest/test-echo", body))
    assert replay.status == 403 and replay.json()["code"] == "NONCE_REPLAYED"
    other = attest_body(h)
    other["nonce"] = h.api.handle(req("POST", "/v1/challenge")).json()["nonce"]
    mismatch = h.api.handle(req("POST", "/v1/attest/test-echo", other))
    assert mismatch.json()["code"] == "NONCE_BINDING_MISMATCH" and mismatch.status == 403
    attests = [r for r in h.sink.records if r.route.startswith("/v1/attest/")]
    assert [r.error_code for r in attests] == [None, "NONCE_REPLAYED", "NONCE_BINDING_MISMATCH"]


def test_expired_nonce(h) -> None:  # type: ignore[no-untyped-def]
    body = attest_body(h)
    h.clock[0] += timedelta(minutes=6)
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", body))
    assert resp.json()["code"] == "NONCE_EXPIRED"


def test_debug_guest_under_default_policy_is_refused_without_a_token(h) -> None:  # type: ignore[no-untyped-def]
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", attest_body(h, debug=True)))
    doc = resp.json()
    assert resp.status == 403 and resp.headers["content-type"] == "application/problem+json"
    assert doc["code"] == "POLICY_REJECTED" and "token" not in doc and "claims" not in doc
    rules = {r["rule"]: r for r in doc["failed_rules"]}
    assert set(rules) == {"debug", "trustworthiness"}
    assert rules["debug"] == {
        "policy": "test",
        "rule": "debug",
        "expected": "disabled",
        "actual": "enabled",
        "detail": "debug-enabled guest: the host can read its memory",
    }
    assert rules["trustworthiness"]["actual"] == {"ear_status": "contraindicated", "runtime-opaque": 96}
    (record,) = [r for r in h.sink.records if r.route.startswith("/v1/attest")]
    assert (record.error_code, record.http_status, record.token_jti) == ("POLICY_REJECTED", 403, None)
    assert record.verdict == "contraindicated" and record.failed_rules == ("debug", "trustworthiness")
    name, _, digest = record.policy_ids[0].partition("@sha256:")
    assert name == "test" and len(digest) == 32 and int(digest, 16) >= 0


def test_policy_allowing_debug_waives_runtime_opaque_but_keeps_the_registered_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path, policy={"test-echo": {"debug": "allowed"}})
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", attest_body(h, debug=True)))
    claims = resp.json()["claims"]
    submod = claims["submods"]["test-echo"]
    assert resp.status == 200 and claims["ear_status"] == "warning"
    assert submod["ear_trustworthiness_vector"]["runtime-opaque"] == 96
    assert submod["ear_appraisal_policy_ids"][0].startswith("test-echo-test@sha256:")


def test_opt_in_contraindicated_token_is_never_valid_on_verify(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path, issue_contraindicated=True)
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", attest_body(h, debug=True)))
    claims = resp.json()["claims"]
    assert resp.status == 200 and claims["ear_status"] == "contraindicated"
    verifier_claims = claims["submods"]["test-echo"]["ear_verifier_claims"]
    assert verifier_claims["policy_failed_rules"] == ["debug", "trustworthiness"]
    check = h.api.handle(req("POST", "/v1/verify", {"token": resp.json()["token"]}))
    assert check.status == 200 and check.json()["valid"] is False
    assert check.json()["reason"] == "ear_status is contraindicated"


def test_policy_schema_is_published(h) -> None:  # type: ignore[no-untyped-def]
    resp = h.api.handle(req("GET", "/v1/policy-schema"))
    assert resp.status == 200 and resp.json()["required"] == ["version", "policies"]


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (req("POST", "/v1/attest/nope", {"evidence": ""}), 404, "UNKNOWN_EVIDENCE_KIND"),
        (req("GET", "/v1/nothing"), 404, "ROUTE_NOT_FOUND"),
        (req("GET", "/v1/challenge"), 405, "METHOD_NOT_ALLOWED"),
        (req("POST", "/v1/attest/test-echo", b"{", "application/json"), 400, "MALFORMED_REQUEST"),
        (req("POST", "/v1/attest/test-echo", b"[]", "application/json"), 400, "MALFORMED_REQUEST"),
        (req("POST", "/v1/attest/test-echo", {"evidence": "!!notb64"}), 400, "MALFORMED_REQUEST"),
        (req("POST", "/v1/attest/test-echo", {"evidence": "AAAA", "extras": "x"}), 400, "MALFORMED_REQUEST"),
        (req("POST", "/v1/attest/test-echo", {"evidence": "AAAA"}), 400, "MALFORMED_EVIDENCE"),
        (req("POST", "/v1/attest/test-echo", {"evidence": "AAAA", "nonce": "00"}), 400, "NONCE_MALFORMED"),
        (req("POST", "/v1/attest/test-echo", b"abc", "text/html"), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (req("POST", "/v1/attest/test-echo", b"x" * 300_000, "application/octet-stream"), 413, "PAYLOAD_TOO_LARGE"),
        (req("POST", "/v1/verify", {"token": "abc"}), 400, "TOKEN_MALFORMED"),
        (req("POST", "/v1/verify", {}), 400, "MALFORMED_REQUEST"),
        (req("POST", "/v1/challenge", b"x", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
def test_errors_are_problem_documents(h, request_, status, code) -> None:  # type: ignore[no-untyped-def]
    resp = h.api.handle(request_)
    assert resp.status == status
    assert resp.headers["content-type"] == "application/problem+json"
    doc = resp.json()
    assert doc["code"] == code and doc["status"] == status
    assert doc["correlation_id"] == resp.headers["x-correlation-id"]
    assert "Traceback" not in resp.body.decode() and "AAAA" not in doc["detail"]


def test_unknown_kind_lists_supported_kinds(h) -> None:  # type: ignore[no-untyped-def]
    doc = h.api.handle(req("POST", "/v1/attest/nope", {"evidence": ""})).json()
    assert "test-echo" in doc["detail"]


def test_internal_errors_are_opaque_and_audited(tmp_path) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        kind = "broken"

        def verify(self, submission, ctx):  # type: ignore[no-untyped-def]
            raise KeyError("secret-material-123")

    h = make_harness(tmp_path, verifiers=[Broken()])
    resp = h.api.handle(req("POST", "/v1/attest/broken", {"evidence": "AAAA"}))
    assert resp.status == 500 and resp.json()["code"] == "INTERNAL_ERROR"
    assert "secret-material" not in resp.body.decode()
    assert [(r.verdict, r.error_code) for r in h.sink.records] == [("error", "INTERNAL_ERROR")]


def test_require_nonce_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path, require_nonce=True)
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", {"evidence": base64.b64encode(b"x" * 40).decode()}))
    assert resp.json()["code"] == "NONCE_REQUIRED"


def test_raw_body_with_nonce_header(h) -> None:  # type: ignore[no-untyped-def]
    body = attest_body(h)
    resp = h.api.handle(
        req(
            "POST",
            "/v1/attest/test-echo",
            base64.b64decode(body["evidence"]),
            "application/octet-stream",
            attestation_nonce=body["nonce"],
        )
    )
    assert resp.status == 200 and resp.json()["claims"]["eat_nonce"] == body["nonce"]


def test_discovery_jwks_and_tokens_are_consistent(h) -> None:  # type: ignore[no-untyped-def]
    disc = h.api.handle(req("GET", "/.well-known/openid-configuration")).json()
    assert disc["issuer"] == "https://broker.test"
    assert disc["jwks_uri"] == "https://broker.test/jwks"
    assert disc["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert {"iss", "sub", "aud", "ear_status", "submods", "eat_nonce"} <= set(disc["claims_supported"])
    assert disc["subject_types_supported"] and disc["response_types_supported"]
    token = h.api.handle(req("POST", "/v1/attest/test-echo", attest_body(h))).json()["token"]
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == disc["issuer"]
    kids = [k["kid"] for k in h.api.handle(req("GET", "/jwks")).json()["keys"]]
    assert jwt.get_unverified_header(token)["kid"] in kids


def test_healthz_lists_kinds(h) -> None:  # type: ignore[no-untyped-def]
    assert h.api.handle(req("GET", "/healthz")).json() == {"status": "ok", "kinds": ["test-echo"]}


def test_bad_correlation_id_is_replaced(h) -> None:  # type: ignore[no-untyped-def]
    resp = h.api.handle(req("GET", "/healthz", x_correlation_id="bad id\nwith newline"))
    assert resp.headers["x-correlation-id"] != "bad id\nwith newline"
    assert len(resp.headers["x-correlation-id"]) == 32


def test_attestations_over_the_in_flight_limit_get_429(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    from tests.support.broker import EchoTestVerifier

    entered, release = threading.Event(), threading.Event()

    class Slow(EchoTestVerifier):
        def verify(self, submission, ctx):  # type: ignore[no-untyped-def]
            entered.set()
            release.wait(10)
            return super().verify(submission, ctx)

    h = make_harness(tmp_path, verifiers=[Slow()], max_inflight_attestations=1)
    body = {"evidence": base64.b64encode(b"x" * 40).decode()}
    first: list = []
    worker = threading.Thread(target=lambda: first.append(h.api.handle(req("POST", "/v1/attest/test-echo", body))))
    worker.start()
    assert entered.wait(10)
    busy = h.api.handle(req("POST", "/v1/attest/test-echo", body))
    release.set()
    worker.join(10)
    assert busy.status == 429 and busy.json()["code"] == "RATE_LIMITED" and busy.headers["retry-after"] == "1"
    assert first[0].status == 200
    assert h.api.handle(req("POST", "/v1/attest/test-echo", body)).status == 200
