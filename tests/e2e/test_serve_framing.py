"""Strict HTTP/1.1 framing on the local server (RFC 9112 §6-7, RFC 9110 §9.1): every malformed message gets a 400
(typed problem document wherever Python sees the request), nothing reaches a route, and no traceback is printed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.serve import Served, exchange, serve

pytestmark = pytest.mark.e2e

HEAD = b"POST /v1/challenge HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("data"), "--workers", "1", "--body-timeout", "3") as served:
        yield served
    text = "\n".join(served.output)
    assert "Traceback" not in text and "panicked" not in text, text


# (case, raw request, status, problem code or None when the HTTP parser refuses before any Python runs)
CASES = [
    (
        "chunk size fffffffffff swallowing the last chunk",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nfffffffffff\r\nabc\r\n0\r\n\r\n",
        400,
        "HTTP_FRAMING_INVALID",
    ),
    (
        "chunk size not hex",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        400,
        "HTTP_FRAMING_INVALID",
    ),
    (
        "chunk size past 64 bits",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 40 + b"\r\nab\r\n0\r\n\r\n",
        400,
        "HTTP_FRAMING_INVALID",
    ),
    ("two different Content-Length", HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", 400, None),
    ("Content-Length list", HEAD + b"Content-Length: 2, 3\r\n\r\n{}x", 400, None),
    ("negative Content-Length", HEAD + b"Content-Length: -1\r\n\r\n{}", 400, None),
    ("signed Content-Length", HEAD + b"Content-Length: +2\r\n\r\n{}", 400, None),
    ("Content-Length past 64 bits", HEAD + b"Content-Length: 99999999999999999999999\r\n\r\n{}", 400, None),
    ("method with a non-token byte", b"G@T /healthz HTTP/1.1\r\nHost: broker\r\n\r\n", 400, None),
    ("lower-case method", b"get /healthz HTTP/1.1\r\nHost: broker\r\n\r\n", 400, "HTTP_FRAMING_INVALID"),
    ("unknown method", b"BREW /healthz HTTP/1.1\r\nHost: broker\r\n\r\n", 405, "METHOD_NOT_ALLOWED"),
    ("declared body over the limit", HEAD + b"Content-Length: 10000000\r\n\r\n", 413, "PAYLOAD_TOO_LARGE"),
    (
        "chunked body over the limit",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"40001\r\n" + b"x" * 0x40001 + b"\r\n0\r\n\r\n",
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    ("body that never arrives", HEAD + b"Content-Length: 20\r\n\r\n{}", 408, "REQUEST_TIMEOUT"),
]


@pytest.mark.parametrize(("case", "raw", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_malformed_framing_is_refused(server: Served, case: str, raw: bytes, status: int, code: str | None) -> None:
    got, headers, body = exchange(server.port, raw)
    assert got == status, (case, body)
    if code is None:
        assert not body  # the HTTP parser's own refusal: no route ran
    else:
        doc = json.loads(body)
        assert headers["content-type"] == "application/problem+json"
        assert doc["code"] == code and doc["status"] == status


def test_well_framed_requests_still_work(server: Served) -> None:
    chunked = HEAD + b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n"
    assert exchange(server.port, chunked)[0] == 200
    same_twice = HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"  # merged into one (RFC 9110 §8.6)
    assert exchange(server.port, same_twice)[0] == 200
    status, _, body = exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: broker\r\n\r\n")
    assert status == 200 and json.loads(body)["status"] == "ok"
