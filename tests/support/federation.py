"""Federation test helpers: the three clouds' audiences, a broker harness allowing them, RFC 8693 requests."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path
from typing import Any

from attestation_broker.api.http import HttpRequest, HttpResponse
from attestation_broker.binding import ExpectedBinding

from tests.support.broker import Harness, make_harness

AWS_AUDIENCE = "sts.amazonaws.com"
GCP_AUDIENCE = "https://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/cvm-pool/providers/attestation-broker"
AZURE_AUDIENCE = "api://AzureADTokenExchange"
AUDIENCES = (AWS_AUDIENCE, GCP_AUDIENCE, AZURE_AUDIENCE)
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def federation_harness(tmp_path: Path, **settings: Any) -> Harness:
    settings.setdefault("federation_audiences", AUDIENCES)
    return make_harness(tmp_path, **settings)


def form(**params: str) -> bytes:
    return urllib.parse.urlencode(params).encode()


def token_request(body: bytes, ctype: str = "application/x-www-form-urlencoded", method: str = "POST") -> HttpRequest:
    return HttpRequest(method, "/v1/token", {"content-type": ctype}, body)


def exchange(h: Harness, subject_token: str, audience: str, **extra: str) -> HttpResponse:
    params = {
        "grant_type": GRANT,
        "subject_token": subject_token,
        "subject_token_type": JWT_TYPE,
        "audience": audience,
        **extra,
    }
    return h.api.handle(token_request(form(**params)))


def attest(h: Harness, **fields: Any) -> dict[str, Any]:
    """An EAR token from the test-echo verifier over the shared router (nonce-bound)."""
    nonce = h.api.handle(HttpRequest("POST", "/v1/challenge", {}, b"")).json()["nonce"]
    evidence = ExpectedBinding(bytes.fromhex(nonce)).tpm_extra_data() + b"-"
    body = json.dumps({"evidence": base64.b64encode(evidence).decode(), "nonce": nonce, **fields}).encode()
    response = h.api.handle(HttpRequest("POST", "/v1/attest/test-echo", {"content-type": "application/json"}, body))
    assert response.status == 200, response.body
    doc: dict[str, Any] = response.json()
    return doc
