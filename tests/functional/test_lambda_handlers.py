"""The thin Lambda handlers, driven by API Gateway HTTP API (payload v2) events."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import jwt
import pytest
from attestation_broker.api.routes import Api

from tests.support.broker import make_harness


def event(
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    route: str | None = None,
    ctype: str = "application/json",
    b64: bool = False,
    **headers: str,
) -> dict[str, Any]:
    hdrs = {"content-type": ctype, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return {
        "version": "2.0",
        "routeKey": f"{method} {route or path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": hdrs,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "x",
            "domainPrefix": "x",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
            },
            "requestId": "rid",
            "routeKey": f"{method} {route or path}",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795000000000,
        },
        "body": (base64.b64encode(body).decode() if b64 else body.decode()) if body is not None else None,
        "isBase64Encoded": b64,
    }


@pytest.fixture
def harness(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from functions import _http

    h = make_harness(tmp_path)
    _http.api.cache_clear()
    monkeypatch.setattr(_http, "api", lambda: Api(h.broker))
    return h


def call(module: str, ev: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    import importlib

    handler = importlib.import_module(f"functions.{module}").handler
    out = handler(ev, None)
    return out["statusCode"], {k.lower(): v for k, v in out["headers"].items()}, json.loads(out["body"])


def test_full_flow_through_handlers(harness) -> None:  # type: ignore[no-untyped-def]
    from attestation_broker.binding import ExpectedBinding

    status, headers, doc = call("challenge", event("POST", "/v1/challenge"))
    assert status == 200 and "x-correlation-id" in headers
    nonce = doc["nonce"]
    evidence = ExpectedBinding(bytes.fromhex(nonce)).tpm_extra_data() + b"-"
    body = json.dumps({"evidence": base64.b64encode(evidence).decode(), "nonce": nonce}).encode()
    status, headers, doc = call(
        "attest",
        event("POST", "/v1/attest/test-echo", body, route="/v1/attest/{kind}", b64=True, x_correlation_id="lambda-1"),
    )
    assert status == 200, doc
    assert headers["x-correlation-id"] == "lambda-1"
    token = doc["token"]
    _, _, jwks = call("keys", event("GET", "/jwks"))
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]].key
    assert jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience="attestation-broker",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    status, _, doc = call("verify", event("POST", "/v1/verify", json.dumps({"token": token}).encode()))
    assert status == 200 and doc["valid"] is True
    status, _, doc = call("keys", event("GET", "/.well-known/openid-configuration"))
    assert doc["jwks_uri"].endswith("/jwks")
    status, _, doc = call("keys", event("GET", "/v1/schema"))
    assert doc["title"].startswith("attestation-broker")
    status, _, doc = call("health", event("GET", "/healthz"))
    assert doc["status"] == "ok"
    # replay through the handler
    status, headers, doc = call("attest", event("POST", "/v1/attest/test-echo", body, route="/v1/attest/{kind}"))
    assert status == 403 and doc["code"] == "NONCE_REPLAYED"
    assert headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("module", "ev", "status", "code"),
    [
        ("attest", event("POST", "/v1/attest/unknown", b"{}", route="/v1/attest/{kind}"), 404, "UNKNOWN_EVIDENCE_KIND"),
        ("attest", event("POST", "/v1/attest/test-echo", b"{", route="/v1/attest/{kind}"), 400, "MALFORMED_REQUEST"),
        (
            "attest",
            event(
                "POST",
                "/v1/attest/test-echo",
                b"x" * 300_000,
                route="/v1/attest/{kind}",
                ctype="application/octet-stream",
            ),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        ("challenge", event("GET", "/v1/other"), 404, "ROUTE_NOT_FOUND"),
        ("verify", event("POST", "/v1/verify", b"{}"), 400, "MALFORMED_REQUEST"),
    ],
)
def test_handler_errors(harness, module, ev, status, code) -> None:  # type: ignore[no-untyped-def]
    got_status, headers, doc = call(module, ev)
    assert (got_status, doc["code"]) == (status, code)
    assert headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("module", ["challenge", "attest", "verify", "keys", "health"])
def test_handler_import_does_not_load_cloud_sdks(module: str) -> None:
    # Nor the policy document's YAML parser and schema validator: only reading a policy document needs them.
    code = (
        f"import sys, functions.{module}; "
        "heavy = [m for m in ('boto3', 'botocore.session', 'botocore.client', 'google.cloud.logging', 'azure.identity',"
        " 'yaml', 'jsonschema') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_undecodable_base64_body_is_a_typed_refusal(harness) -> None:  # type: ignore[no-untyped-def]
    ev = event("POST", "/v1/attest/test-echo", b"{}", route="/v1/attest/{kind}")
    ev["body"], ev["isBase64Encoded"] = "not base64!", True
    status, headers, doc = call("attest", ev)
    assert (status, doc["code"]) == (400, "MALFORMED_REQUEST")
    assert headers["content-type"] == "application/problem+json" and headers["x-correlation-id"]
