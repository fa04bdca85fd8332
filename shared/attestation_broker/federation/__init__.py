"""Workload side of federation: turn a broker EAR token into cloud credentials (docs/federation.md).

:func:`exchange` performs the RFC 8693 token exchange at the broker's ``POST /v1/token`` and returns a
:class:`FederationToken` for one audience; :class:`TokenSource` does it again on every call, for SDKs that
ask for a fresh assertion each time they need credentials (azure-identity's ``ClientAssertionCredential``,
google-auth's subject-token supplier). The cloud steps live in :mod:`.aws` (boto3
``AssumeRoleWithWebIdentity`` and the ``credential_process`` output), :mod:`.gcp` (google-auth identity-pool
credentials, optional service-account impersonation) and :mod:`.azure` (azure-identity). Each imports its SDK
lazily: the broker's Lambda artifact carries none of them (extra ``federation``).

HTTP to the broker is the guest client's urllib transport (stdlib, injectable for tests).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from attestation_broker.client.errors import ClientExchangeError
from attestation_broker.client.exchange import Transport, urllib_transport
from attestation_broker.federation.errors import (
    FEDERATE_BROKER_UNREACHABLE,
    FEDERATE_EXCHANGE_REFUSED,
    FEDERATE_RESPONSE_INVALID,
    ExchangeRefused,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - RFC 8693 §3 URI, not a secret


@dataclass(frozen=True)
class FederationToken:
    """A broker federation token for one audience (RFC 8693 §2.2.1 response)."""

    access_token: str
    audience: str
    issued_token_type: str
    expires_in: int
    obtained_at: float  # time.time() when the broker answered

    @property
    def expires_at(self) -> float:
        return self.obtained_at + self.expires_in


def exchange(
    broker_url: str,
    subject_token: str,
    audience: str,
    *,
    transport: Transport | None = None,
    clock: Callable[[], float] = time.time,
) -> FederationToken:
    """Exchange a broker EAR token for a federation token for ``audience`` at ``<broker_url>/v1/token``."""
    send = transport or urllib_transport()
    form = urllib.parse.urlencode(
        {
            "grant_type": GRANT_TYPE,
            "subject_token": subject_token,
            "subject_token_type": TOKEN_TYPE_JWT,
            "audience": audience,
            "requested_token_type": TOKEN_TYPE_JWT,
        }
    ).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    try:
        reply = send("POST", broker_url.rstrip("/") + "/v1/token", form, headers)
    except ClientExchangeError as exc:
        raise FEDERATE_BROKER_UNREACHABLE(exc.detail) from None
    try:
        doc = json.loads(reply.body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict):
        raise FEDERATE_RESPONSE_INVALID(f"token exchange: HTTP {reply.status}, body is not a JSON object")
    if reply.status != 200:
        error = str(doc.get("error") or f"http_{reply.status}")
        description = str(doc.get("error_description") or "")
        raise ExchangeRefused(
            FEDERATE_EXCHANGE_REFUSED, f"{error}: {description}".rstrip(": "), error=error, status=reply.status
        )
    token, expires_in = doc.get("access_token"), doc.get("expires_in")
    if not isinstance(token, str) or token.count(".") != 2 or not isinstance(expires_in, int):
        raise FEDERATE_RESPONSE_INVALID("token exchange: no access_token/expires_in in the answer")
    return FederationToken(token, audience, str(doc.get("issued_token_type", TOKEN_TYPE_JWT)), expires_in, clock())


class TokenSource:
    """A callable that returns a fresh federation token on every call: ``subject`` yields the current broker EAR
    token (e.g. re-read from the file ``attestation-broker attest`` keeps renewed), which is exchanged anew."""

    def __init__(
        self, broker_url: str, audience: str, subject: Callable[[], str], *, transport: Transport | None = None
    ) -> None:
        self.broker_url = broker_url
        self.audience = audience
        self._subject = subject
        self._transport = transport

    def token(self) -> FederationToken:
        return exchange(self.broker_url, self._subject(), self.audience, transport=self._transport)

    def __call__(self) -> str:
        return self.token().access_token
