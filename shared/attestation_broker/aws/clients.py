"""Lazily built boto3 clients with short timeouts and bounded retries.

A request must not hang on an AWS dependency: connect/read timeouts are a few seconds and the
standard retry mode makes at most ``max_attempts`` tries, so an outage surfaces as a typed 503 quickly.
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` (honoured by botocore itself) point the clients at a
local stand-in such as moto server.
"""

from __future__ import annotations

import threading
from typing import Any


def make_client(
    service: str,
    *,
    connect_timeout: float = 2.0,
    read_timeout: float = 3.0,
    max_attempts: int = 2,
    **kwargs: Any,
) -> Any:
    """A boto3 client for ``service``; boto3 is imported here, not at module import."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"max_attempts": max_attempts, "mode": "standard"},
    )
    return boto3.session.Session().client(service, config=config, **kwargs)  # type: ignore[call-overload]


class LazyClient:
    """Builds its boto3 client on first use: a function that never calls the service (health, challenge)
    never imports boto3 or pays ~50-100 ms per client at cold start."""

    def __init__(self, service: str, client: Any = None) -> None:
        self._service = service
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self._service)
        return self._client


def error_name(exc: BaseException) -> str:
    """A short, secret-free name for a botocore failure (the AWS error code or the exception class)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def aws_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the AWS dependency failed" (network, throttling, access, service errors)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)
