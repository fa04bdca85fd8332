"""End to end: start `attestation-broker serve` as a real process and talk HTTP to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import free_port, wait_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    data = tmp_path_factory.mktemp("broker-data")
    cli = Path(sys.executable).parent / "attestation-broker"
    env = {**os.environ, "BROKER_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz")
        lines: list[str] = []
        yield base, lines
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
        lines.extend(out.splitlines())


def call(
    base: str, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(base + path, data=body, method=method, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, json.loads(exc.read())


def test_serve_end_to_end(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    status, headers, doc = call(base, "POST", "/v1/challenge", b"")
    assert status == 200 and len(doc["nonce"]) == 114
    assert headers["x-correlation-id"]
    status, _, disc = call(base, "GET", "/.well-known/openid-configuration")
    assert disc["issuer"] == base and disc["jwks_uri"] == base + "/jwks"
    status, _, jwks = call(base, "GET", "/jwks")
    assert jwks["keys"][0]["alg"] == "ES256"
    status, _, health = call(base, "GET", "/healthz")
    assert health["status"] == "ok"
    status, headers, doc = call(base, "POST", "/v1/attest/no-such-kind", b"{}")
    assert status == 404 and doc["code"] == "UNKNOWN_EVIDENCE_KIND"
    assert headers["content-type"] == "application/problem+json"
    status, _, doc = call(base, "POST", "/v1/attest/no-such-kind", b"x" * 400_000, "application/octet-stream")
    assert status == 413 and doc["code"] == "PAYLOAD_TOO_LARGE"
    status, _, doc = call(base, "POST", "/v1/verify", json.dumps({"token": "a.b.c"}).encode())
    assert status in (400, 403) and doc["code"].startswith("TOKEN_")


def test_serve_is_concurrent(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: call(base, "POST", "/v1/challenge", b"")[2]["nonce"], range(64)))
    assert len(set(results)) == 64
