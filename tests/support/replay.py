"""A loopback HTTP server that replays recorded vendor responses (AMD KDS, Intel PCS, JWKS).

Routes map a request target (path plus query string, exactly as the client sends it) to a
``Reply``. Unknown targets get 404, so URL building is tested by the real fetch code. Every request
target is recorded in ``requests`` for assertions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    body: bytes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ReplayServer:
    routes: dict[str, Reply]
    requests: list[str] = field(default_factory=list)
    base_url: str = ""

    def add(self, target: str, body: bytes, status: int = 200, **headers: str) -> None:
        self.routes[target] = Reply(body, status, headers)


@contextmanager
def replay_server(routes: Mapping[str, Reply | bytes] | None = None) -> Iterator[ReplayServer]:
    state = ReplayServer(routes={k: (v if isinstance(v, Reply) else Reply(v)) for k, v in (routes or {}).items()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            reply = state.routes.get(self.path)
            if reply is None:
                reply = Reply(b"not found", 404)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
