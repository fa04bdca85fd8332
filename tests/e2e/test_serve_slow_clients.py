"""Slow clients on the local server: 256 idle or trickling connections must not starve ``/healthz``, and each one is
closed by its per-connection deadline (headers: granian's header-read timeout; body: the RSGI adapter's deadline).

Bounded: loopback only, 256 sockets, about 6 s.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.serve import Served, serve

pytestmark = pytest.mark.e2e

SLOW = 256
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    args = ("--workers", "2", "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT))
    with serve(tmp_path_factory.mktemp("data"), *args) as served:
        yield served
    assert "Traceback" not in "\n".join(served.output)


def _open(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        socks.append(sock)
    return socks


def _health(base: str) -> float:
    start = time.monotonic()
    with urllib.request.urlopen(base + "/healthz", timeout=3) as resp:
        assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    return time.monotonic() - start


def test_healthz_answers_while_256_clients_hold_connections(server: Served) -> None:
    # Three kinds of slow client, 256 in all: silent after connecting, headers one byte at a time, and a body that
    # is declared but trickles in.
    idle = _open(server.port, SLOW // 2)
    header_trickle = _open(server.port, SLOW // 4)
    body_trickle = _open(server.port, SLOW // 4)
    head = b"POST /v1/challenge HTTP/1.1\r\nHost: broker\r\n"
    for sock in body_trickle:
        sock.send(head + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    probes: list[float] = []
    started = time.monotonic()
    step = 0
    while time.monotonic() - started < HEADER_TIMEOUT * 0.75:  # all slow clients are still within their deadlines
        for sock in header_trickle:
            sock.send(head[step % len(head) : step % len(head) + 1])
        for sock in body_trickle:
            sock.send(b" ")
        step += 1
        probes.append(_health(server.base))
        time.sleep(0.05)
    assert len(probes) >= 5
    assert max(probes) < 1.0, probes  # every probe answered promptly, none queued behind a slow client

    # Past the deadlines the server closes every slow connection: idle and header-tricklers without a response
    # (the parser never completed a request), body-tricklers with a typed 408.
    selector = selectors.DefaultSelector()
    for sock in idle + header_trickle + body_trickle:
        selector.register(sock, selectors.EVENT_READ)
    closed: set[socket.socket] = set()
    answers: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + HEADER_TIMEOUT + BODY_TIMEOUT + 3
    while len(closed) < SLOW and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if data:
                answers[sock] = answers.get(sock, b"") + data
            else:
                closed.add(sock)
                selector.unregister(sock)
    for sock in idle + header_trickle + body_trickle:
        sock.close()
    assert len(closed) == SLOW, (
        len(set(idle) & closed),
        len(set(header_trickle) & closed),
        len(set(body_trickle) & closed),
    )
    assert all(answers.get(s, b"").startswith(b"HTTP/1.1 408") for s in body_trickle)
    assert all(b"REQUEST_TIMEOUT" in answers[s] for s in body_trickle)
    assert _health(server.base) < 1.0
