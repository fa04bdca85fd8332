"""The one network port for vendor collateral (docs/architecture.md "Trust and collateral").

Every vendor fetch (AMD KDS, Intel PCS, Google/MAA JWKS) goes through a :class:`Fetcher`. The
production implementation is :class:`HttpFetcher` (urllib, hard timeouts, size cap, no retries: a
request must never wait on vendor throttling). :class:`OfflineFetcher` opens no socket. Outages map to
``COLLATERAL_UNAVAILABLE`` (503) and a vendor 404 to ``COLLATERAL_NOT_FOUND``; neither is ever a pass.
"""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
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


def _retry_after(value: str | None) -> int:
    try:
        return max(1, min(int(value or "30"), 3600))
    except ValueError:
        return 30


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

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        if not url.startswith(("https://", "http://")):
            raise COLLATERAL_UNAVAILABLE(f"unsupported collateral URL scheme in {url!r}")
        request = urllib.request.Request(url, headers={"User-Agent": self._user_agent})  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
                body = response.read(self._max_bytes + 1)
                headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise COLLATERAL_NOT_FOUND(f"vendor returned 404 for {url}") from None
            retry = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            raise COLLATERAL_UNAVAILABLE(f"vendor returned HTTP {exc.code} for {url}", retry_after=retry) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise COLLATERAL_UNAVAILABLE(f"vendor unreachable for {url}: {_failure(exc)}") from None
        if len(body) > self._max_bytes:
            raise COLLATERAL_UNAVAILABLE(f"vendor response for {url} exceeds {self._max_bytes} bytes")
        return FetchResponse(url=url, body=body, headers=headers)


class OfflineFetcher:
    """Never opens a socket: every miss is COLLATERAL_UNAVAILABLE (an expired cached copy: COLLATERAL_EXPIRED)."""

    offline = True

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        raise COLLATERAL_UNAVAILABLE(f"offline mode: {url} is not cached")
