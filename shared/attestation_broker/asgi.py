"""ASGI adapter (ASGI 3.0 HTTP scope) from the local server to :class:`~attestation_broker.api.routes.Api`.

The server (``attestation_broker.server``: granian) parses HTTP/1.1 framing in Rust and enforces the header-read
deadline; this adapter adds what the broker needs on top, before any verification runs:

- **Strict framing** (RFC 9112 §6.3): a method that is not an upper-case RFC 9110 §9.1 token, or (should the server
  pass them through) several ``Content-Length`` fields, a non-decimal length, or ``Content-Length`` beside
  ``Transfer-Encoding`` is refused with a typed 400 (``HTTP_FRAMING_INVALID``) before the body is read. A chunked
  body the server's decoder cannot decode (bad chunk line, connection cut mid-body) gets the same typed 400, never a
  traceback.
- **Body limits**: a declared length over ``BROKER_MAX_BODY_BYTES`` is refused (413) without reading; an undeclared
  (chunked) body is read only up to one byte past the limit.
- **Chunk sizes**: granian's decoder accepts any 64-bit chunk size and does not show it to the application, so a
  chunk declared larger than the body limit ends in 413 (data past the limit), 408 (the deadline below) or, when the
  client's bytes already hold the terminating last-chunk the decoder is still counting as data, a typed 400.
  Header-level framing faults (two different ``Content-Length`` values, a non-numeric length, a method that is not a
  token) are refused by granian itself with a bare 400 and the connection closed, before any Python runs; identical
  duplicate ``Content-Length`` values are merged into one, as RFC 9110 §8.6 permits.
- **Body deadline**: the whole body must arrive within ``body_timeout`` seconds, else 408 ``REQUEST_TIMEOUT``.
  Waiting for a slow body costs one coroutine, not a thread, so trickling clients cannot starve ``/healthz``.

Verification is CPU-bound and synchronous, so ``Api.handle`` runs on a small per-process thread pool; the event loop
stays free to accept and read other connections meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attestation_broker.api.http import HttpRequest, HttpResponse
from attestation_broker.api.routes import Api
from attestation_broker.errors import HTTP_FRAMING_INVALID, PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, BrokerError

log = logging.getLogger("attestation_broker")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# RFC 9110 §9.1: methods are case-sensitive tokens; every method the broker knows is upper-case letters.
_METHOD = re.compile(r"^[A-Z]{1,20}$")
_DIGITS = re.compile(r"^[0-9]{1,19}$")


# What a chunked message ends with (RFC 9112 §7.1): CRLF after the previous chunk, last-chunk, empty trailer.
_LAST_CHUNK = b"\r\n0\r\n\r\n"


class AsgiApp:
    """One per worker process; ``threads`` bounds how many requests verify at once in this process."""

    def __init__(self, api: Api, *, body_timeout: float = 10.0, threads: int = 4) -> None:
        self.api = api
        self.limit = api.broker.settings.max_body_bytes
        self.body_timeout = body_timeout
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="broker") if threads > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            request = await self._request(scope, receive)
        except BrokerError as exc:
            # Early refusal (framing, size, deadline): the router's problem document and one audit record.
            client = scope.get("client")
            probe = HttpRequest(
                str(scope.get("method", "")),
                str(scope.get("path", "")),
                _headers(scope),
                remote_ip=str(client[0]) if client else None,
            )
            await _send(send, self.api.refuse(probe, exc))
            return
        if self._pool is None or request.method == "GET":
            # GET routes (health, keys, schema, discovery) are cheap: answered on the event loop, so they never
            # queue behind verifications (a liveness probe must not wait for a vendor fetch).
            response = self.api.handle(request)
        else:
            response = await asyncio.get_running_loop().run_in_executor(self._pool, self.api.handle, request)
        await _send(send, response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    self._pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _request(self, scope: Scope, receive: Receive) -> HttpRequest:
        method = str(scope.get("method", ""))
        if not _METHOD.match(method):
            raise HTTP_FRAMING_INVALID("method is not an upper-case token")
        raw: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        lengths = [v for k, v in raw if k.lower() == b"content-length"]
        chunked = any(k.lower() == b"transfer-encoding" for k, _ in raw)
        if len(lengths) > 1:
            raise HTTP_FRAMING_INVALID("more than one Content-Length")
        if lengths and chunked:
            raise HTTP_FRAMING_INVALID("both Content-Length and Transfer-Encoding")
        declared = 0
        if lengths:
            text = lengths[0].decode("latin-1").strip()
            if not _DIGITS.match(text):
                raise HTTP_FRAMING_INVALID("Content-Length is not a decimal length")
            declared = int(text)
        if declared > self.limit:
            raise PAYLOAD_TOO_LARGE(f"body exceeds {self.limit} bytes")
        body = await self._body(receive, chunked=chunked) if declared or chunked else b""
        headers = _headers(scope)
        query: dict[str, str] = {}
        for part in bytes(scope.get("query_string") or b"").decode("latin-1").split("&"):
            if part:
                key, _, value = part.partition("=")
                query[key] = value
        client = scope.get("client")
        return HttpRequest(
            method=method,
            path=str(scope.get("path") or "/"),
            headers=headers,
            body=body,
            query=query,
            remote_ip=str(client[0]) if client else None,
        )

    async def _body(self, receive: Receive, *, chunked: bool) -> bytes:
        chunks: list[bytes] = []
        size = 0
        tail = b""
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        # The server's decoder gave up (bad chunk line) or the client left: either way the
                        # message is incomplete; a client still listening gets a typed 400.
                        raise HTTP_FRAMING_INVALID("body ended before its declared framing")
                    chunk = bytes(message.get("body") or b"")
                    size += len(chunk)
                    if size > self.limit:
                        # One byte past the limit is enough to refuse an undeclared oversize body.
                        raise PAYLOAD_TOO_LARGE(f"body exceeds {self.limit} bytes")
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        return b"".join(chunks)
                    tail = (tail + chunk)[-len(_LAST_CHUNK) :]
                    if chunked and tail == _LAST_CHUNK:
                        # The client sent its last-chunk while the decoder still expects data: a chunk size
                        # larger than what was sent (e.g. ``fffffffffff``) swallowed the framing.
                        raise HTTP_FRAMING_INVALID("chunk size exceeds the chunk sent")
        except TimeoutError:
            raise REQUEST_TIMEOUT(f"body not received within {self.body_timeout:g} s") from None
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the server's body decoder failed: malformed chunked framing
            raise HTTP_FRAMING_INVALID(f"body framing invalid ({type(exc).__name__})") from None


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        name = bytes(key).decode("latin-1").lower()
        text = bytes(value).decode("latin-1")
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


async def _send(send: Send, response: HttpResponse) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})
