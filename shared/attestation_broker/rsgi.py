"""RSGI adapter (granian's Rust Server Gateway Interface, HTTP protocol) from the local server to
:class:`~attestation_broker.api.routes.Api`.

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

Why RSGI rather than ASGI (measured on the 2-core dev machine, ``POST /v1/attest/snp`` at 64 connections; figures in
docs/deploy.md "Local server"): granian's ASGI ``send`` showed up as an eighth of a worker's samples under load, and
the same adapter over RSGI (one synchronous ``response_bytes`` call, no message dictionaries) used 70–230 µs less
server CPU per request.

Once the whole body is in memory, ``Api.handle`` runs on the worker's event loop by default (``threads=0``).
Verification is CPU-bound. Its signature checks release the GIL (cryptography), but the parsing, policy, claims and
token signing around them hold it, and the worker processes already keep every core busy; handing each request to a
pool thread and back cost 150–250 µs of CPU per request (loop wake-ups, GIL hand-offs) and widened p99. What inline
execution gives up: while a request verifies, that worker's loop answers nothing else, so a verification that must
first fetch vendor collateral (a cold cache; each fetch bounded by ``BROKER_FETCH_TIMEOUT_SECONDS``) delays the
other requests of that worker, ``/healthz`` included, while the other workers keep serving. ``threads > 0`` (``serve
--threads N``) runs non-GET requests on a pool of N threads instead, for deployments that fetch often; GET routes
(health, keys, schema, discovery) then stay on the loop and never queue behind a verification.
"""

from __future__ import annotations

import asyncio
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attestation_broker.api.http import HttpRequest, HttpResponse
from attestation_broker.api.routes import Api
from attestation_broker.errors import HTTP_FRAMING_INVALID, PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, BrokerError

log = logging.getLogger("attestation_broker")

# RFC 9110 §9.1: methods are case-sensitive tokens; every method the broker knows is upper-case letters.
_METHOD = re.compile(r"^[A-Z]{1,20}$")
_DIGITS = re.compile(r"^[0-9]{1,19}$")

# What a chunked message ends with (RFC 9112 §7.1): CRLF after the previous chunk, last-chunk, empty trailer.
_LAST_CHUNK = b"\r\n0\r\n\r\n"


class RsgiApp:
    """One per worker process; ``threads`` > 0 verifies on that many pool threads instead of the event loop."""

    def __init__(self, api: Api, *, body_timeout: float = 10.0, threads: int = 0) -> None:
        self.api = api
        self.limit = api.broker.settings.max_body_bytes
        self.body_timeout = body_timeout
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="broker") if threads > 0 else None

    def __rsgi_del__(self, loop: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":
            return
        pairs: list[tuple[str, str]] = list(scope.headers.items())
        try:
            request = await self._request(scope, pairs, protocol)
        except BrokerError as exc:
            # Early refusal (framing, size, deadline): the router's problem document and one audit record.
            probe = HttpRequest(str(scope.method), str(scope.path), _headers(pairs), remote_ip=_client_ip(scope))
            _send(protocol, self.api.refuse(probe, exc))
            return
        if self._pool is None or request.method == "GET":
            response = self.api.handle(request)
        else:
            response = await asyncio.get_running_loop().run_in_executor(self._pool, self.api.handle, request)
        _send(protocol, response)

    async def _request(self, scope: Any, pairs: list[tuple[str, str]], protocol: Any) -> HttpRequest:
        method = str(scope.method)
        if not _METHOD.match(method):
            raise HTTP_FRAMING_INVALID("method is not an upper-case token")
        lengths = [v for k, v in pairs if k.lower() == "content-length"]
        chunked = any(k.lower() == "transfer-encoding" for k, _ in pairs)
        if len(lengths) > 1:
            raise HTTP_FRAMING_INVALID("more than one Content-Length")
        if lengths and chunked:
            raise HTTP_FRAMING_INVALID("both Content-Length and Transfer-Encoding")
        declared = 0
        if lengths:
            text = lengths[0].strip()
            if not _DIGITS.match(text):
                raise HTTP_FRAMING_INVALID("Content-Length is not a decimal length")
            declared = int(text)
        if declared > self.limit:
            raise PAYLOAD_TOO_LARGE(f"body exceeds {self.limit} bytes")
        body = await self._body(protocol, declared=declared, chunked=chunked) if declared or chunked else b""
        query: dict[str, str] = {}
        for part in str(scope.query_string or "").split("&"):
            if part:
                key, _, value = part.partition("=")
                query[key] = value
        return HttpRequest(
            method=method,
            path=str(scope.path or "/"),
            headers=_headers(pairs),
            body=body,
            query=query,
            remote_ip=_client_ip(scope),
        )

    async def _body(self, protocol: Any, *, declared: int, chunked: bool) -> bytes:
        try:
            async with asyncio.timeout(self.body_timeout):
                if not chunked:
                    # A declared length within the limit: the server reads exactly that much, in one call.
                    body = bytes(await protocol())
                    if len(body) != declared:
                        raise HTTP_FRAMING_INVALID("body ended before its declared length")
                    return body
                return await self._chunked(protocol)
        except TimeoutError:
            raise REQUEST_TIMEOUT(f"body not received within {self.body_timeout:g} s") from None
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - the server's body reader failed: malformed framing or a cut
            raise HTTP_FRAMING_INVALID(f"body framing invalid ({type(exc).__name__})") from None

    async def _chunked(self, protocol: Any) -> bytes:
        """Read a chunked body up to one byte past the limit. granian's stream yields an empty chunk at its end and
        also in place of a frame it could not decode (or a trailer section), then ends: a stream that yields anything
        after an empty chunk did not end cleanly, so it is refused (a body with trailer fields included)."""
        chunks: list[bytes] = []
        size = 0
        tail = b""
        ended = False
        async for piece in protocol:
            chunk = bytes(piece)
            if ended:
                raise HTTP_FRAMING_INVALID("chunked body did not decode")
            if not chunk:
                ended = True
                continue
            size += len(chunk)
            if size > self.limit:
                # One byte past the limit is enough to refuse an undeclared oversize body.
                raise PAYLOAD_TOO_LARGE(f"body exceeds {self.limit} bytes")
            chunks.append(chunk)
            tail = (tail + chunk)[-len(_LAST_CHUNK) :]
            if tail == _LAST_CHUNK:
                # The client sent its last-chunk while the decoder still expects data: a chunk size
                # larger than what was sent (e.g. ``fffffffffff``) swallowed the framing.
                raise HTTP_FRAMING_INVALID("chunk size exceeds the chunk sent")
        return b"".join(chunks)


def _client_ip(scope: Any) -> str | None:
    client = str(scope.client or "")
    if not client:
        return None
    host = client.rsplit(":", 1)[0] if ":" in client else client
    return host.strip("[]") or None


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, text in pairs:
        name = key.lower()
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers


def _send(protocol: Any, response: HttpResponse) -> None:
    headers = [*response.headers.items(), ("content-length", str(len(response.body)))]
    protocol.response_bytes(response.status, headers, response.body)
