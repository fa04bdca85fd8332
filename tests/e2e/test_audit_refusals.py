"""Over real HTTP: every refused request leaves exactly one audit record (counted by correlation id in the
stdout sink of a real `attestation-broker serve` process), whatever layer refused it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.proc import free_port, wait_http

pytestmark = pytest.mark.e2e

TPM = "/v1/attest/tpm"
NONCE_SPACED = " " + "ab" * 56 + " "
# (correlation id, method, path, content type, body, expected status, expected code)
REFUSALS: tuple[tuple[str, str, str, str | None, bytes, int, str], ...] = (
    ("r-415", "POST", TPM, "text/html", b"<x/>", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("r-kind", "POST", "/v1/attest/" + "n" * 5000, "application/json", b"{}", 404, "UNKNOWN_EVIDENCE_KIND"),
    ("r-json", "POST", TPM, "application/json", b"{", 400, "MALFORMED_REQUEST"),
    ("r-deep", "POST", TPM, "application/json", b"[" * 50_000 + b"]" * 50_000, 400, "MALFORMED_REQUEST"),
    ("r-noev", "POST", TPM, "application/json", b'{"nonce": "00"}', 400, "MALFORMED_REQUEST"),
    ("r-b64", "POST", TPM, "application/json", b'{"evidence": "***"}', 400, "MALFORMED_REQUEST"),
    (
        "r-nonce",
        "POST",
        TPM,
        "application/json",
        json.dumps({"evidence": "AAAA", "nonce": NONCE_SPACED}).encode(),
        400,
        "NONCE_MALFORMED",
    ),
    ("r-evidence", "POST", "/v1/attest/nitro", "application/octet-stream", b"\x00" * 16, 400, "MALFORMED_EVIDENCE"),
    ("r-route", "GET", "/v2/nothing", None, b"", 404, "ROUTE_NOT_FOUND"),
    ("r-method", "GET", TPM, None, b"", 405, "METHOD_NOT_ALLOWED"),
    ("r-large", "POST", TPM, "application/octet-stream", b"\x00" * 300_000, 413, "PAYLOAD_TOO_LARGE"),
    ("r-verify", "POST", "/v1/verify", "application/jwt", b"not.a.token", 400, "TOKEN_MALFORMED"),
    ("r-verify-415", "POST", "/v1/verify", "image/png", b"x", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("r-challenge", "POST", "/v1/challenge", "application/json", b"[1", 400, "MALFORMED_REQUEST"),
)


def test_every_refused_request_has_exactly_one_record(tmp_path: Path) -> None:
    port = free_port()
    cli = Path(sys.executable).parent / "attestation-broker"
    env = {**os.environ, "BROKER_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        for cid, method, path, ctype, body, status, code in REFUSALS:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            headers = {"X-Correlation-Id": cid, "Content-Length": str(len(body))}
            if ctype:
                headers["Content-Type"] = ctype
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            conn.close()
            assert (resp.status, doc["code"]) == (status, code), (cid, doc)
            assert doc["correlation_id"] == cid and len(doc["detail"]) < 300
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    records = [
        json.loads(line)["decision"] for line in out.splitlines() if line.startswith("{") and '"decision"' in line
    ]
    by_cid: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_cid.setdefault(str(record["correlation_id"]), []).append(record)
    for cid, _, _, _, _, status, code in REFUSALS:
        assert [(r["error_code"], r["http_status"], r["verdict"]) for r in by_cid.get(cid, [])] == [
            (code, status, "error")
        ], cid
    assert by_cid["r-evidence"][0]["kind"] == "nitro" and by_cid["r-kind"][0]["kind"] is None
    assert "Traceback" not in err
