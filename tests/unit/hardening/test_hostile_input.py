"""Hostile input gets a typed answer (issue: nested JSON, spaced nonce, reflected input, internals in
details) and every refused request leaves exactly one audit record."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import urllib.error
from datetime import UTC, datetime
from typing import Any

import pytest
from attestation_broker import jsonlimits
from attestation_broker.api.http import HttpRequest
from attestation_broker.audit.record import evidence_digest
from attestation_broker.errors import MALFORMED_REQUEST, BrokerError, reflect
from attestation_broker.evidence.azure_vtpm.kind import AzureVtpmVerifier
from attestation_broker.nonce import NonceService
from attestation_broker.registry import default_registry
from attestation_broker.trust.fetch import _failure
from attestation_broker.verifier import Submission

from tests.fuzz.seeds import seeds
from tests.support.broker import make_harness

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 40_000 + b"1" + b"}" * 40_000  # 200 KB: under the 256 KB body limit


def req(method: str, path: str, body: bytes = b"", ctype: str | None = "application/json", **headers: str) -> Any:
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    if ctype:
        hdrs["content-type"] = ctype
    return HttpRequest(method, path, hdrs, body)


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, b'{"evidence": ' + DEEP + b"}"], ids=["array", "object", "field"])
@pytest.mark.parametrize("path", ["/v1/attest/test-echo", "/v1/verify", "/v1/challenge"])
def test_deeply_nested_json_is_malformed_request(tmp_path, path: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path)
    resp = h.api.handle(req("POST", path, body, x_correlation_id="deep-1"))
    assert resp.status == 400, resp.body
    problem = resp.json()
    assert problem["code"] == "MALFORMED_REQUEST" and "nested deeper than 32" in problem["detail"]
    assert [(r.correlation_id, r.error_code, r.http_status) for r in h.sink.records] == [
        ("deep-1", "MALFORMED_REQUEST", 400)
    ]


def test_json_depth_scanner_ignores_brackets_inside_strings() -> None:
    assert jsonlimits.depth(b'{"a": "[[[[[[[[[[{{{{{{", "b": [1, {"c": "\\"]]]"}]}') == 3
    doc = jsonlimits.loads(b'["' + b"[" * 1000 + b'"]', MALFORMED_REQUEST, "body")
    assert doc == ["[" * 1000]
    with pytest.raises(BrokerError) as exc:
        jsonlimits.loads(b"[" * 33 + b"]" * 33, MALFORMED_REQUEST, "body")
    assert exc.value.code is MALFORMED_REQUEST
    with pytest.raises(BrokerError) as exc:
        jsonlimits.loads(b'{"a": "\xff"}', MALFORMED_REQUEST, "body")
    assert exc.value.code is MALFORMED_REQUEST


def test_azure_vtpm_nested_json_evidence_is_typed() -> None:
    (seed, *_) = seeds("azure-vtpm")
    for evidence in (DEEP, DEEP_OBJECT, b'{"SnpReport": ' + DEEP + b"}"):
        with pytest.raises(BrokerError) as exc:
            AzureVtpmVerifier().verify(Submission(evidence), seed.make_ctx())
        assert exc.value.code.name == "AZURE_VTPM_EVIDENCE_MALFORMED" and exc.value.status == 400


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: " " + n[:-2] + " ",  # same length, spaces at both ends
        lambda n: n[:56] + "  " + n[58:],  # spaces in the middle
        lambda n: n[:-1] + "\n",
        lambda n: n[:-1] + "g",
        lambda n: "０" + n[1:],  # a full-width digit: str.isdigit-style checks would let it through
    ],
    ids=["padded", "inner", "newline", "non-hex", "fullwidth"],
)
def test_spaced_or_non_hex_nonce_is_malformed(tmp_path, mangle) -> None:  # type: ignore[no-untyped-def]
    service = NonceService(b"k" * 32)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    value = mangle(service.issue(now).value)
    assert len(value) == 114
    with pytest.raises(BrokerError) as exc:
        service.check(value, now)
    assert exc.value.code.name == "NONCE_MALFORMED"
    # over the API: 400 with one audit record
    h = make_harness(tmp_path)
    nonce = h.api.handle(req("POST", "/v1/challenge", ctype=None)).json()["nonce"]
    body = {"evidence": base64.b64encode(b"x" * 40).decode(), "nonce": mangle(nonce)}
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", json.dumps(body).encode()))
    assert resp.status == 400 and resp.json()["code"] == "NONCE_MALFORMED"
    assert [r.error_code for r in h.sink.records] == [None, "NONCE_MALFORMED"]


def test_unknown_kind_and_route_details_are_length_capped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path)
    long_kind = "k" * 60_000
    resp = h.api.handle(req("POST", "/v1/attest/" + long_kind, b"{}"))
    assert resp.status == 404 and resp.json()["code"] == "UNKNOWN_EVIDENCE_KIND"
    assert len(resp.json()["detail"]) < 200 and "kkkk" in resp.json()["detail"]
    resp = h.api.handle(req("GET", "/x" * 30_000))
    assert resp.status == 404 and len(resp.json()["detail"]) < 100
    resp = h.api.handle(req("Z" * 10_000, "/v1/verify"))
    assert resp.status == 405 and len(resp.json()["detail"]) < 100
    assert all(len(r.route) <= 256 for r in h.sink.records) and len(h.sink.records) == 3
    with pytest.raises(BrokerError) as exc:
        default_registry().require(long_kind)
    assert len(exc.value.detail) < 200
    assert reflect("short") == "'short'" and len(reflect("x" * 1000)) == 64


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (socket.gaierror(-2, "Name or service not known"), "name resolution failed"),
        (ConnectionRefusedError(111, "refused"), "connection refused"),
        (TimeoutError(), "timed out"),
        (OSError(113, "no route"), "connection failed"),
    ],
)
def test_fetch_failure_detail_names_no_exception_type(reason: BaseException, text: str) -> None:
    detail = _failure(urllib.error.URLError(reason))
    assert detail == text
    assert "Error" not in detail and "gaierror" not in detail


def test_evidence_digest_covers_every_part_in_order() -> None:
    assert evidence_digest(b"ev") == hashlib.sha256(b"ev").hexdigest()  # one part: what sha256sum prints
    base = evidence_digest(b"ev", (b"a", b"b"), {"x": 1}, b"u")
    variants = [
        evidence_digest(b"ev", (b"b", b"a"), {"x": 1}, b"u"),  # extras order
        evidence_digest(b"ev", (b"a", b"b"), {"x": 2}, b"u"),  # a field
        evidence_digest(b"ev", (b"a", b"b"), {"x": 1}, b"v"),  # user data
        evidence_digest(b"eva", (b"", b"b"), {"x": 1}, b"u"),  # a byte moved across parts
        evidence_digest(b"ev", (b"ab",), {"x": 1}, b"u"),  # two parts joined
        evidence_digest(b"ev", (b"a", b"b"), {"x": 1}),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert evidence_digest(b"ev", (), {"b": 1, "a": 2}) == evidence_digest(b"ev", (), {"a": 2, "b": 1})


def test_attest_record_digest_names_fields_and_extras(tmp_path) -> None:  # type: ignore[no-untyped-def]
    h = make_harness(tmp_path)
    evidence = b"y" * 40
    body = {"evidence": base64.b64encode(evidence).decode(), "extras": [base64.b64encode(b"e1").decode()], "f": 1}
    resp = h.api.handle(req("POST", "/v1/attest/test-echo", json.dumps(body).encode()))
    assert resp.status == 200, resp.body
    (record,) = h.sink.records
    assert record.evidence_sha256 == evidence_digest(evidence, (b"e1",), {"f": 1})
    assert resp.json()["claims"]["submods"]["test-echo"]["ear_verifier_claims"]["evidence_sha256"] == (
        record.evidence_sha256
    )
