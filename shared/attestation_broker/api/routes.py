"""The HTTP API (docs/architecture.md "Request path"), defined once for Lambda and the local server.

``Api.handle`` applies the request-size limit, content-type checks, routing, the error → problem
mapping, and adds the correlation id to every response.

Audit: every refused request leaves exactly one decision record — the use case writes it when the
refusal comes from ``Broker.attest``/``verify_token``, the edge writes it for everything refused
before (413, 404, 405, 415, unknown kind, malformed body, 429, internal errors). A challenge leaves one
record too; successful reads of the published documents (JWKS, discovery, schema, health) leave none.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

from attestation_broker.api.envelope import parse_attest, parse_json_object
from attestation_broker.api.http import HttpRequest, HttpResponse, json_response, problem
from attestation_broker.errors import (
    FEDERATION_REQUEST_INVALID,
    INTERNAL_ERROR,
    MALFORMED_REQUEST,
    METHOD_NOT_ALLOWED,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    ROUTE_NOT_FOUND,
    UNSUPPORTED_MEDIA_TYPE,
    BrokerError,
    reflect,
)
from attestation_broker.exchange import oauth_error, token_response
from attestation_broker.policy import schema as policy_schema
from attestation_broker.usecases import Broker, RequestMeta

log = logging.getLogger("attestation_broker")

Handler = Callable[[HttpRequest, RequestMeta], HttpResponse]
ATTEST_PREFIX = "/v1/attest/"
TOKEN_PATH = "/v1/token"  # noqa: S105 - a route, not a secret
ROUTE_RECORD_LIMIT = 256


class Api:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        # Load shedding: attestations beyond this many in flight get 429 instead of queueing (and
        # holding vendor-fetch budgets) behind the busy ones.
        self._attest_slots = threading.BoundedSemaphore(broker.settings.max_inflight_attestations)
        self._routes: dict[str, dict[str, Handler]] = {
            "/v1/challenge": {"POST": self._challenge},
            "/v1/verify": {"POST": self._verify},
            TOKEN_PATH: {"POST": self._token},
            "/v1/schema": {"GET": self._schema},
            "/v1/policy-schema": {"GET": self._policy_schema},
            "/jwks": {"GET": self._jwks},
            "/.well-known/openid-configuration": {"GET": self._discovery},
            "/healthz": {"GET": self._health},
        }

    def _resolve(self, request: HttpRequest) -> Handler:
        path = request.path.rstrip("/") or "/"
        if path.startswith(ATTEST_PREFIX) and "/" not in path[len(ATTEST_PREFIX) :]:
            methods: dict[str, Handler] = {"POST": self._attest}
        else:
            found = self._routes.get(path)
            if found is None:
                raise ROUTE_NOT_FOUND(f"no route {reflect(path)}")
            methods = found
        handler = methods.get(request.method.upper())
        if handler is None:
            raise METHOD_NOT_ALLOWED(f"{reflect(request.method)} not allowed; use {', '.join(methods)}")
        return handler

    def refuse(self, request: HttpRequest, error: BrokerError) -> HttpResponse:
        """The problem response, with its one audit record, for a request a server refuses before routing
        (framing, declared size): servers call this instead of building the problem themselves."""
        correlation_id = request.correlation_id()
        self.broker.refused(self._meta(request, correlation_id), error, started=time.perf_counter())
        return self._error(request, error, correlation_id)

    def _meta(self, request: HttpRequest, correlation_id: str) -> RequestMeta:
        return RequestMeta(
            correlation_id=correlation_id,
            route=request.path[:ROUTE_RECORD_LIMIT],  # the audit record keeps a bounded path
            method=request.method.upper(),
            user_agent=request.header("user-agent"),
            remote_ip=request.remote_ip,
            trace=(request.header("x-cloud-trace-context") or "").split("/")[0] or None,
        )

    def handle(self, request: HttpRequest) -> HttpResponse:
        correlation_id = request.correlation_id()
        meta = self._meta(request, correlation_id)
        started = time.perf_counter()
        try:
            if len(request.body) > self.broker.settings.max_body_bytes:
                raise PAYLOAD_TOO_LARGE(f"body exceeds {self.broker.settings.max_body_bytes} bytes")
            response = self._resolve(request)(request, meta)
        except BrokerError as exc:
            self.broker.refused(meta, exc, started=started, kind=self._kind_of(request))
            return self._error(request, exc, correlation_id)
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the client
            log.error("unhandled %s on %s", type(exc).__name__, meta.route)
            internal = INTERNAL_ERROR()
            self.broker.refused(meta, internal, started=started, kind=self._kind_of(request))
            return self._error(request, internal, correlation_id)
        return HttpResponse(response.status, response.body, {**response.headers, "x-correlation-id": correlation_id})

    @staticmethod
    def _error(request: HttpRequest, error: BrokerError, correlation_id: str) -> HttpResponse:
        # The token endpoint speaks OAuth (RFC 6749 §5.2) to OAuth clients; everything else is RFC 9457.
        if (request.path.rstrip("/") or "/") == TOKEN_PATH:
            return oauth_error(error, correlation_id)
        return problem(error, correlation_id)

    def _kind_of(self, request: HttpRequest) -> str | None:
        """The evidence kind an attest request names, when it is one the broker serves (else None)."""
        path = request.path.rstrip("/")
        if not path.startswith(ATTEST_PREFIX):
            return None
        kind = path[len(ATTEST_PREFIX) :]
        return kind if kind in self.broker.registry else None

    # --- routes ------------------------------------------------------------------------------
    def _challenge(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        started = time.perf_counter()
        if request.body and request.content_type != "application/json":
            raise UNSUPPORTED_MEDIA_TYPE("challenge takes an empty body or application/json")
        if request.body:
            parse_json_object(request.body)
        response = json_response(200, self.broker.challenge())
        self.broker.issued_challenge(meta, started=started)
        return response

    def _attest(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        kind = request.path.rstrip("/")[len(ATTEST_PREFIX) :]
        self.broker.registry.require(kind)  # 404 before decoding the body
        envelope = parse_attest(request)
        # Optional federation audience (docs/federation.md): a federation token next to the EAR token, checked
        # before any evidence work so an audience that is not allowed costs nothing.
        audience = envelope.fields.get("audience", request.header("attestation-audience"))
        if audience is not None:
            if not isinstance(audience, str) or not audience:
                raise FEDERATION_REQUEST_INVALID("'audience' must be a non-empty string")
            self.broker.federation.rule(audience)
            fields = {k: v for k, v in envelope.fields.items() if k != "audience"}
            envelope = dataclasses.replace(envelope, fields=fields)
        if not self._attest_slots.acquire(blocking=False):
            raise RATE_LIMITED("too many attestations in flight", retry_after=1)
        try:
            result = self.broker.attest(kind, envelope, meta)
        finally:
            self._attest_slots.release()
        payload: dict[str, object] = {"token": result.token, "claims": result.claims}
        if audience is not None:
            federated = self.broker.federate_attested(result.claims, audience, meta)
            payload.update(
                federation_token=federated.token,
                federation_claims=federated.claims,
                federation_expires_in=federated.expires_in,
            )
        return json_response(200, payload)

    def _token(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        """RFC 8693 token exchange (see attestation_broker.exchange)."""
        result = self.broker.exchange(request.content_type, request.body, meta)
        return token_response(result.token, result.issued_token_type, result.expires_in)

    def _verify(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        ctype = request.content_type
        audience: str | None = None
        if ctype == "application/json":
            doc = parse_json_object(request.body)
            token = doc.get("token")
            audience = doc.get("audience") if isinstance(doc.get("audience"), str) else None
        elif ctype in ("application/jwt", "text/plain"):
            token = request.body.decode("ascii", errors="replace").strip()
        else:
            raise UNSUPPORTED_MEDIA_TYPE("verify takes application/json, application/jwt or text/plain")
        if not isinstance(token, str) or not token:
            raise MALFORMED_REQUEST("missing 'token'")
        claims = self.broker.verify_token(token, meta, audience=audience)
        # A genuine broker token is still not "valid" for acting on unless its result is affirming or
        # warning (an operator may have opted into EAR-style contraindicated tokens): docs/policy.md.
        status = claims.get("ear_status")
        if status in ("affirming", "warning"):
            return json_response(200, {"valid": True, "claims": claims})
        return json_response(200, {"valid": False, "reason": f"ear_status is {status}", "claims": claims})

    def _schema(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        return json_response(200, self.broker.schema, content_type="application/schema+json")

    def _policy_schema(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        return json_response(200, policy_schema(), content_type="application/schema+json")

    def _jwks(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        return json_response(200, self.broker.jwks(), content_type="application/jwk-set+json")

    def _discovery(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        return json_response(200, self.broker.discovery())

    def _health(self, request: HttpRequest, meta: RequestMeta) -> HttpResponse:
        return json_response(200, self.broker.health())
