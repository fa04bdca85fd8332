"""A broker served on 127.0.0.1 in-process (stdlib HTTP server → :class:`Api`), for client round trips.

The guest client talks real HTTP to it; verifiers, policy, clock and collateral fetcher are whatever the
test builds (test-only trust anchors reach verifiers through their constructors, never through requests).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from attestation_broker.api.http import HttpRequest
from attestation_broker.trust.fetch import Fetcher
from attestation_broker.verifier import Verifier

from tests.support.broker import Harness, make_harness


@dataclass
class LoopbackBroker:
    url: str
    harness: Harness
    requests: list[str]


@contextmanager
def loopback_broker(
    tmp_path: Path,
    *,
    verifiers: Sequence[Verifier],
    policy: Mapping[str, Any] | None = None,
    fetcher: Fetcher | None = None,
    **settings: Any,
) -> Iterator[LoopbackBroker]:
    harness = make_harness(tmp_path, verifiers=verifiers, policy=policy, fetcher=fetcher, **settings)
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, _query = self.path.partition("?")
            seen.append(f"{self.command} {path}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            response = harness.api.handle(HttpRequest(self.command, path, headers, body, remote_ip="127.0.0.1"))
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = _serve  # noqa: N815
        do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LoopbackBroker(f"http://127.0.0.1:{server.server_address[1]}", harness, seen)
    finally:
        server.shutdown()
        server.server_close()
