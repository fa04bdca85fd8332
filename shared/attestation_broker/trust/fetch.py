"""The one network port for vendor collateral (docs/architecture.md "Trust and collateral").

Every vendor fetch (AMD KDS, Intel PCS, Google/MAA JWKS) goes through a :class:`Fetcher`. The
production implementation is :class:`HttpFetcher` (urllib, hard timeouts, size cap, no retries: a
request must never wait on vendor throttling). :class:`OfflineFetcher` opens no socket. Outages map to
``COLLATERAL_UNAVAILABLE`` (503) and a vendor 404 to ``COLLATERAL_NOT_FOUND``; neither is ever a pass.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from attestation_broker.errors import COLLATERAL_NOT_FOUND, COLLATERAL_UNAVAILABLE

MAX_COLLATERAL_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FetchResponse:
    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class Fetcher(Protocol):
    def get(self, url: str, *, timeout: float) -> FetchResponse:
        """Return the body of a 200 response or raise COLLATERAL_UNAVAILABLE / COLLATERAL_NOT_FOUND."""
        ...


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse an HTTP ``Retry-After`` (delta-seconds or HTTP-date, RFC 9110 §10.2.3); None if absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 24 * 3600))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, min((when - (now or datetime.now(UTC))).total_seconds(), 24 * 3600.0))


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP exchange as it happened (any status), for callers that route between upstreams."""

    url: str
    status: int
    body: bytes
    headers: Mapping[str, str]


def _failure(exc: BaseException) -> str:
    """A client-safe description of a transport failure: a category, never an exception type name."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "name resolution failed"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ssl.SSLError):
        return "TLS handshake failed"
    return "connection failed"


class HttpFetcher:
    """HTTP(S) GET with a timeout, a size cap and no redirects to other schemes."""

    def __init__(self, *, user_agent: str = "attestation-broker", max_bytes: int = MAX_COLLATERAL_BYTES) -> None:
        self._user_agent = user_agent
        self._max_bytes = max_bytes

    def request(self, url: str, *, timeout: float) -> HttpAnswer:
        """GET ``url``; every HTTP status is an answer. Transport failures are COLLATERAL_UNAVAILABLE."""
        if not url.startswith(("https://", "http://")):
            raise COLLATERAL_UNAVAILABLE(f"unsupported collateral URL scheme in {url!r}")
        request = urllib.request.Request(url, headers={"User-Agent": self._user_agent})  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
                body = response.read(self._max_bytes + 1)
                headers = {k.lower(): v for k, v in response.headers.items()}
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            headers = {k.lower(): v for k, v in exc.headers.items()} if exc.headers else {}
            return HttpAnswer(url, exc.code, b"", headers)
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise COLLATERAL_UNAVAILABLE(f"vendor unreachable for {url}: {_failure(exc)}") from None
        if len(body) > self._max_bytes:
            raise COLLATERAL_UNAVAILABLE(f"vendor response for {url} exceeds {self._max_bytes} bytes")
        return HttpAnswer(url, status, body, headers)

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        answer = self.request(url, timeout=timeout)
        return answer_to_response(answer)


def answer_to_response(answer: HttpAnswer) -> FetchResponse:
    """200 → the body; 404 → COLLATERAL_NOT_FOUND; anything else → COLLATERAL_UNAVAILABLE (with Retry-After)."""
    if answer.status == 200:
        return FetchResponse(url=answer.url, body=answer.body, headers=answer.headers)
    if answer.status == 404:
        raise COLLATERAL_NOT_FOUND(f"vendor returned 404 for {answer.url}")
    retry = retry_after_seconds(answer.headers.get("retry-after"))
    raise COLLATERAL_UNAVAILABLE(
        f"vendor returned HTTP {answer.status} for {answer.url}", retry_after=max(1, int(retry or 30))
    )


class OfflineFetcher:
    """Never opens a socket: every miss is COLLATERAL_UNAVAILABLE (an expired cached copy: COLLATERAL_EXPIRED)."""

    offline = True

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        raise COLLATERAL_UNAVAILABLE(f"offline mode: {url} is not cached")
