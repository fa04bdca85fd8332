"""Error codes of the workload-side federation client (``attestation-broker federate``), docs/federation.md.

The client never serves HTTP: the status in the README table is the category's nominal one (502 when the broker
or a cloud token service refuses or answers unusably, 503 when it cannot be reached, 500 for a missing SDK).
"""

from __future__ import annotations

from typing import ClassVar

from attestation_broker.errors import BrokerError, ConfigError, ErrorCode, define


class FederationClientError(BrokerError):
    """The broker's token exchange or a cloud's token service refused, or answered with something unusable."""

    status: ClassVar[int] = 502
    exit_code: ClassVar[int] = 3
    title: ClassVar[str] = "Federation client: exchange failed"


class FederationUnreachable(FederationClientError):
    status: ClassVar[int] = 503
    title: ClassVar[str] = "Federation client: service unreachable"


class ExchangeRefused(FederationClientError):
    """The broker answered an RFC 6749 §5.2 error; ``error`` is its OAuth code (invalid_grant, invalid_target...)."""

    def __init__(self, code: ErrorCode, detail: str = "", *, error: str = "", status: int = 0) -> None:
        super().__init__(code, detail)
        self.error = error
        self.http_status = status


FEDERATE_EXCHANGE_REFUSED = define(
    "FEDERATE_EXCHANGE_REFUSED",
    FederationClientError,
    "(federate) The broker refused the token exchange (invalid_grant, invalid_target, invalid_request...).",
)
FEDERATE_BROKER_UNREACHABLE = define(
    "FEDERATE_BROKER_UNREACHABLE", FederationUnreachable, "(federate) The broker's /v1/token could not be reached."
)
FEDERATE_RESPONSE_INVALID = define(
    "FEDERATE_RESPONSE_INVALID",
    FederationClientError,
    "(federate) The broker or a cloud token service answered with something that is not a usable token.",
)
FEDERATE_CLOUD_REFUSED = define(
    "FEDERATE_CLOUD_REFUSED",
    FederationClientError,
    "(federate) The cloud's token service (AWS STS, Google STS, Microsoft Entra) refused the federation token.",
)
FEDERATE_SDK_MISSING = define(
    "FEDERATE_SDK_MISSING",
    ConfigError,
    "(federate) The cloud SDK is not installed: pip install 'attestation-broker[federation]'.",
)
