"""OAuth 2.0 Token Exchange (RFC 8693) request decoding and RFC 6749 §5.2 error responses for ``POST /v1/token``.

The request is ``application/x-www-form-urlencoded`` (RFC 8693 §2.1) with
``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``, ``subject_token`` (a broker EAR token),
``subject_token_type=urn:ietf:params:oauth:token-type:jwt``, exactly one ``audience`` and optionally
``requested_token_type`` (jwt or id_token). ``resource``, ``actor_token`` and ``scope`` are refused rather than
ignored: the broker never issues a token narrower or broader than the caller believes. Parameters must not
repeat (RFC 6749 §3.2). Errors are JSON ``{"error", "error_description"}`` objects (RFC 6749 §5.2 — not
problem+json): the broker's typed error codes map onto the OAuth codes below and stay in the audit record.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from attestation_broker.api.http import HttpResponse, json_response
from attestation_broker.errors import (
    FEDERATION_AUDIENCE_NOT_ALLOWED,
    FEDERATION_GRANT_UNSUPPORTED,
    FEDERATION_REQUEST_INVALID,
    FEDERATION_SUBJECT_REFUSED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    TOKEN_MALFORMED,
    BrokerError,
    RateLimited,
    Unavailable,
)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE_JWT = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 - RFC 8693 §3 URI
TOKEN_TYPE_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - RFC 8693 §3 URI
ISSUABLE_TYPES = (TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN)
FORM_TYPE = "application/x-www-form-urlencoded"
_KNOWN = {"grant_type", "subject_token", "subject_token_type", "audience", "requested_token_type"}
_REFUSED = {"resource", "actor_token", "actor_token_type", "scope"}
MAX_FIELDS = 16

# Broker error code -> RFC 6749 §5.2 / RFC 8693 §2.2.2 error code.
OAUTH_ERRORS = {
    FEDERATION_REQUEST_INVALID.name: "invalid_request",
    FEDERATION_GRANT_UNSUPPORTED.name: "unsupported_grant_type",
    FEDERATION_AUDIENCE_NOT_ALLOWED.name: "invalid_target",
    FEDERATION_SUBJECT_REFUSED.name: "invalid_grant",
    TOKEN_MALFORMED.name: "invalid_grant",
    TOKEN_INVALID.name: "invalid_grant",
    TOKEN_EXPIRED.name: "invalid_grant",
}
# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_UNSAFE = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


@dataclass(frozen=True)
class ExchangeRequest:
    subject_token: str
    audience: str
    requested_token_type: str


def parse_form(body: bytes) -> dict[str, list[str]]:
    try:
        text = body.decode("ascii")
        return urllib.parse.parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FEDERATION_REQUEST_INVALID("the body is not a valid form") from None


def parse_request(content_type: str, body: bytes) -> ExchangeRequest:
    if content_type != FORM_TYPE:
        raise FEDERATION_REQUEST_INVALID(f"the request must be {FORM_TYPE}")
    params = parse_form(body)
    repeated = sorted(k for k, v in params.items() if len(v) > 1)
    if repeated:
        # One audience per token: several would need several tokens (RFC 8693 §2.1 allows one per request).
        raise FEDERATION_REQUEST_INVALID(f"parameters must not repeat: {', '.join(repeated)}")
    one: Mapping[str, str] = {k: v[0] for k, v in params.items()}
    grant = one.get("grant_type")
    if not grant:
        raise FEDERATION_REQUEST_INVALID("missing grant_type")
    if grant != GRANT_TYPE:
        raise FEDERATION_GRANT_UNSUPPORTED(f"grant_type must be {GRANT_TYPE}")
    refused = sorted(_REFUSED & set(one))
    if refused:
        raise FEDERATION_REQUEST_INVALID(f"unsupported parameters: {', '.join(refused)}")
    for name in ("subject_token", "subject_token_type", "audience"):
        if not one.get(name):
            raise FEDERATION_REQUEST_INVALID(f"missing {name}")
    if one["subject_token_type"] != TOKEN_TYPE_JWT:
        raise FEDERATION_REQUEST_INVALID(f"subject_token_type must be {TOKEN_TYPE_JWT}")
    requested = one.get("requested_token_type") or TOKEN_TYPE_JWT
    if requested not in ISSUABLE_TYPES:
        raise FEDERATION_REQUEST_INVALID(f"requested_token_type must be one of {', '.join(ISSUABLE_TYPES)}")
    return ExchangeRequest(one["subject_token"], one["audience"], requested)


def token_response(access_token: str, issued_token_type: str, expires_in: int) -> HttpResponse:
    """RFC 8693 §2.2.1; ``token_type`` is ``N_A``: the token is not an OAuth access token."""
    return json_response(
        200,
        {
            "access_token": access_token,
            "issued_token_type": issued_token_type,
            "token_type": "N_A",
            "expires_in": expires_in,
        },
        pragma="no-cache",
    )


def oauth_error(error: BrokerError, correlation_id: str) -> HttpResponse:
    """RFC 6749 §5.2 error JSON: 400 for the OAuth codes; 405/413/429/503 keep their status (and Retry-After);
    server errors are 500 ``server_error``."""
    code = OAUTH_ERRORS.get(error.code.name)
    status = 400
    if code is None:
        if isinstance(error, Unavailable | RateLimited):
            code, status = "temporarily_unavailable", error.status
        elif error.status < 500:
            code, status = "invalid_request", error.status  # 405, 413: the HTTP status still says why
        else:
            code, status = "server_error", 500
    headers = {"x-correlation-id": correlation_id, "pragma": "no-cache"}
    if error.retry_after is not None and status in (429, 503):
        headers["retry-after"] = str(error.retry_after)
    description = _DESCRIPTION_UNSAFE.sub("?", error.detail)[:300]
    return json_response(status, {"error": code, "error_description": description}, **headers)
