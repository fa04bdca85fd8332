"""Runtime-neutral HTTP request/response values and RFC 9457 problem responses.

The Lambda handlers (Powertools) and the local server both convert to and from these, so routing,
limits and error mapping exist once.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker import jsonlimits
from attestation_broker.errors import BrokerError, PolicyRejected

_CORRELATION = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
CORRELATION_HEADER = "x-correlation-id"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    query: Mapping[str, str] = field(default_factory=dict)
    remote_ip: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    def correlation_id(self) -> str:
        """The caller's correlation id when it is safe to echo, else a fresh one."""
        supplied = self.header(CORRELATION_HEADER)
        if supplied and _CORRELATION.match(supplied):
            return supplied
        return uuid.uuid4().hex


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def json_response(status: int, payload: Any, *, content_type: str = "application/json", **headers: str) -> HttpResponse:
    body = jsonlimits.dumps(payload)
    return HttpResponse(status, body, {"content-type": content_type, "cache-control": "no-store", **headers})


def problem(error: BrokerError, correlation_id: str) -> HttpResponse:
    """application/problem+json for a typed error; detail is the error's client-safe text only."""
    payload = {
        "type": f"urn:attestation-broker:error:{error.code.name}",
        "title": error.title,
        "status": error.status,
        "code": error.code.name,
        "detail": error.detail,
        "correlation_id": correlation_id,
    }
    if isinstance(error, PolicyRejected):
        # RFC 9457 §3.2 extension member: which rules refused the result, with expected and actual values.
        payload["failed_rules"] = [dict(rule) for rule in error.failed_rules]
    headers = {"x-correlation-id": correlation_id}
    if error.retry_after is not None and error.status in (429, 503):
        headers["retry-after"] = str(error.retry_after)
    return json_response(error.status, payload, content_type="application/problem+json", **headers)
