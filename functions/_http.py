"""Adapter from API Gateway HTTP API (payload format 2.0) events to the shared router.

The event is handed to :class:`~attestation_broker.api.routes.Api` directly: the shared router already routes,
limits and maps errors, so a second router (Powertools' resolver, 110-200 ms of imports at cold start) paid for
nothing. Every function answers with the same problem documents as the local server. The broker is built once
per execution environment (cold start) and reused; verifiers are built on first use (``registry.Registry``).

Payload 2.0 (API Gateway developer guide, "Working with AWS Lambda proxy integrations for HTTP APIs"): headers
arrive lower-cased with repeated values comma-joined, the body is base64 when ``isBase64Encoded``; the response is
``statusCode``/``headers``/``body``/``isBase64Encoded``.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import cache
from typing import TYPE_CHECKING, Any

from attestation_broker.api.http import HttpRequest, HttpResponse
from attestation_broker.api.routes import Api
from attestation_broker.errors import MALFORMED_REQUEST, BrokerError

# Content types API Gateway can pass through as text; anything else is returned base64-encoded.
_TEXT = ("application/json", "application/problem+json", "application/jwk-set+json", "application/schema+json")

if TYPE_CHECKING:
    from attestation_broker.policy import PolicySet


def _startup_policies() -> PolicySet | None:
    """Parse and validate the operator's policy document during the INIT phase (cold start), so a broken
    document stops every handler from starting with a clear message instead of reaching a caller
    (docs/policy.md). None when no document is configured (the built-in defaults need no parsing)."""
    path = os.environ.get("BROKER_POLICY_FILE", "")
    if not path:
        return None
    from attestation_broker.policy import load_policy_set
    from attestation_broker.registry import default_registry

    try:
        return load_policy_set(path, known_kinds=default_registry())
    except BrokerError as exc:
        raise RuntimeError(f"attestation-broker refuses to start: {exc.detail}") from None


_POLICIES = _startup_policies()


@cache
def api() -> Api:
    from attestation_broker.bootstrap import build_broker
    from attestation_broker.config import Settings

    return Api(build_broker(Settings.from_env(), policies=_POLICIES))


def to_request(event: dict[str, Any]) -> HttpRequest:
    """An HTTP API v2 event as the runtime-neutral request (MALFORMED_REQUEST if the body is not valid base64)."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise MALFORMED_REQUEST("body is not valid base64") from None
    else:
        body = raw.encode()
    return HttpRequest(
        method=str(http.get("method") or "GET"),
        path=str(event.get("rawPath") or http.get("path") or "/"),
        headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
        body=body,
        query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
        remote_ip=http.get("sourceIp"),
    )


def to_result(response: HttpResponse) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "application/json")
    text = content_type.split(";")[0].strip() in _TEXT
    return {
        "statusCode": response.status,
        "headers": dict(response.headers),
        "body": response.body.decode() if text else base64.b64encode(response.body).decode(),
        "isBase64Encoded": not text,
    }


def make_handler(routes: list[tuple[str, str]]) -> Any:
    """The Lambda entry point. ``routes`` documents what API Gateway sends this function (see serverless.yml);
    the shared router answers anything else with its 404/405 problem document."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            request = to_request(event)
        except BrokerError as exc:
            # Refused before routing (undecodable body): the router's problem document and one audit record.
            http = (event.get("requestContext") or {}).get("http") or {}
            headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
            probe = HttpRequest(str(http.get("method") or "POST"), str(event.get("rawPath") or "/"), headers)
            return to_result(api().refuse(probe, exc))
        return to_result(api().handle(request))

    handler.routes = tuple(routes)  # type: ignore[attr-defined]
    return handler
