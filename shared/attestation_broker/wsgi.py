"""The local HTTP server for ``attestation-broker serve``: cheroot's thread-pooled WSGI server.

It only adapts WSGI to :class:`~attestation_broker.api.routes.Api`; the request-size limit is enforced before
the body is read (a declared Content-Length over the limit is refused without reading it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from attestation_broker.api.http import HttpRequest
from attestation_broker.api.routes import Api
from attestation_broker.errors import PAYLOAD_TOO_LARGE

log = logging.getLogger("attestation_broker")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def wsgi_app(api: Api) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    limit = api.broker.settings.max_body_bytes

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            probe = HttpRequest(str(environ.get("REQUEST_METHOD", "GET")), str(environ.get("PATH_INFO", "/")), headers)
            response = api.refuse(probe, PAYLOAD_TOO_LARGE(f"body exceeds {limit} bytes"))
        else:
            # Read one byte past the limit so an undeclared (chunked) oversize body is still caught.
            body = (
                environ["wsgi.input"].read(limit + 1)
                if declared or "chunked" in headers.get("transfer-encoding", "")
                else b""
            )
            query: dict[str, str] = {}
            for part in str(environ.get("QUERY_STRING", "")).split("&"):
                if part:
                    key, _, value = part.partition("=")
                    query[key] = value
            request = HttpRequest(
                method=str(environ.get("REQUEST_METHOD", "GET")),
                path=str(environ.get("PATH_INFO", "/")),
                headers=headers,
                body=body,
                query=query,
                remote_ip=str(environ.get("REMOTE_ADDR") or "") or None,
            )
            response = api.handle(request)
        status = f"{response.status} {_REASONS.get(response.status, 'Status')}"
        start_response(
            status, [(k, v) for k, v in response.headers.items()] + [("content-length", str(len(response.body)))]
        )
        return [response.body]

    return app


def serve(api: Api, host: str = "127.0.0.1", port: int = 8080, threads: int = 16) -> None:
    from cheroot import wsgi

    server = wsgi.Server((host, port), wsgi_app(api), numthreads=threads, server_name="attestation-broker")
    log.info("attestation-broker listening on http://%s:%d", host, port)
    try:
        server.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
