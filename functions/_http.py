"""Adapter from API Gateway HTTP API (payload v2) events to the shared router, via Powertools.

Each function module builds its resolver with only its own routes; anything else, and every error,
is answered by the shared ``Api`` so problem documents are identical on Lambda and locally.
The broker is built once per execution environment (cold start) and reused.
"""

from __future__ import annotations

import base64
import os
from functools import cache
from typing import TYPE_CHECKING, Any

from attestation_broker.api.http import HttpRequest
from attestation_broker.api.routes import Api
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

if TYPE_CHECKING:
    from attestation_broker.policy import PolicySet


def _startup_policies() -> PolicySet | None:
    """Parse and validate the operator's policy document during the INIT phase (cold start), so a broken
    document stops every handler from starting with a clear message instead of reaching a caller
    (docs/policy.md). None when no document is configured (the built-in defaults need no parsing)."""
    path = os.environ.get("BROKER_POLICY_FILE", "")
    if not path:
        return None
    from attestation_broker.errors import BrokerError
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


def _dispatch(resolver: APIGatewayHttpResolver) -> Response[str]:
    event = resolver.current_event
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode()
    context = event.request_context
    request = HttpRequest(
        method=event.http_method,
        path=event.path,
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        body=body,
        query=dict(event.query_string_parameters or {}),
        remote_ip=context.http.source_ip if context and context.http else None,
    )
    result = api().handle(request)
    headers = dict(result.headers)
    content_type = headers.pop("content-type", "application/json")
    return Response(status_code=result.status, content_type=content_type, body=result.body.decode(), headers=headers)


def make_handler(routes: list[tuple[str, str]]) -> Any:
    resolver = APIGatewayHttpResolver()

    def route_handler(**_: str) -> Response[str]:
        return _dispatch(resolver)

    for method, path in routes:
        resolver.route(path, method=method)(route_handler)
    resolver.not_found(lambda _exc: _dispatch(resolver))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result: dict[str, Any] = resolver.resolve(event, context)
        return result

    return handler
