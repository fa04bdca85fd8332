"""Claim checks on verified upstream tokens with injected time (RFC 7519 §4.1, RFC 8725 §3.8–3.9).

* issuer: exact match against a pinned list (trailing ``/`` ignored), done on the unverified payload before
  any key is fetched and again on the verified payload;
* ``exp`` and ``iat`` are required NumericDates, ``nbf`` is optional; ``clock_skew_seconds`` is allowed each way;
* audience: ``aud`` (string or list) must contain one of the accepted audiences when those are configured;
* nonce: the binding of :meth:`attestation_broker.binding.ExpectedBinding.token_nonce` (lowercase hex of the nonce),
  compared exactly in constant time. Tokens carry no user data, so a binding with user data cannot match.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import NONCE_BINDING_MISMATCH, TOKEN_EXPIRED
from attestation_broker.evidence.jose.errors import (
    UPSTREAM_TOKEN_AUDIENCE_MISMATCH,
    UPSTREAM_TOKEN_CLAIMS_INVALID,
    UPSTREAM_TOKEN_ISSUER_UNTRUSTED,
    UPSTREAM_TOKEN_NOT_YET_VALID,
)


def _normalize_issuer(value: str) -> str:
    return value.rstrip("/")


def pinned_issuer(payload: Mapping[str, Any], pinned: Collection[str]) -> str:
    """The pinned issuer string (as configured) that equals the token's ``iss``; raise otherwise."""
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise UPSTREAM_TOKEN_ISSUER_UNTRUSTED("token has no 'iss' claim")
    for candidate in pinned:
        if _normalize_issuer(candidate) == _normalize_issuer(iss):
            return _normalize_issuer(candidate)
    raise UPSTREAM_TOKEN_ISSUER_UNTRUSTED(f"issuer {iss[:128]!r} is not pinned")


def _numeric_date(payload: Mapping[str, Any], name: str, *, required: bool) -> datetime | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"token has no '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' is not a NumericDate")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' is out of range") from None


@dataclass(frozen=True)
class Validity:
    iat: datetime
    exp: datetime
    nbf: datetime | None


def check_times(payload: Mapping[str, Any], now: datetime, skew_seconds: int) -> Validity:
    skew = timedelta(seconds=skew_seconds)
    exp = _numeric_date(payload, "exp", required=True)
    iat = _numeric_date(payload, "iat", required=True)
    nbf = _numeric_date(payload, "nbf", required=False)
    assert exp is not None and iat is not None
    if now >= exp + skew:
        raise TOKEN_EXPIRED(f"token expired at {exp.isoformat()}")
    if nbf is not None and now + skew < nbf:
        raise UPSTREAM_TOKEN_NOT_YET_VALID(f"token not valid before {nbf.isoformat()}")
    if now + skew < iat:
        raise UPSTREAM_TOKEN_NOT_YET_VALID(f"token issued in the future ({iat.isoformat()})")
    if exp < iat:
        raise UPSTREAM_TOKEN_CLAIMS_INVALID("token expires before it was issued")
    return Validity(iat=iat, exp=exp, nbf=nbf)


def audiences(payload: Mapping[str, Any]) -> tuple[str, ...]:
    aud = payload.get("aud")
    if aud is None:
        return ()
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return tuple(aud)
    raise UPSTREAM_TOKEN_CLAIMS_INVALID("'aud' is neither a string nor a list of strings")


@dataclass(frozen=True)
class AudienceCheck:
    audiences: tuple[str, ...]
    matched: str | None  # the accepted audience found in the token; None when none are configured


def check_audience(
    payload: Mapping[str, Any], accepted: Sequence[str], *, required_when_configured: bool = True
) -> AudienceCheck:
    """With accepted audiences configured, one must be in ``aud``; without, any ``aud`` is only recorded."""
    auds = audiences(payload)
    if not accepted or (not auds and not required_when_configured):
        return AudienceCheck(auds, None)
    for aud in auds:
        if aud in accepted:
            return AudienceCheck(auds, aud)
    raise UPSTREAM_TOKEN_AUDIENCE_MISMATCH("token audience is not an accepted audience")


def check_nonce(kind: str, values: Sequence[str], binding: ExpectedBinding) -> None:
    """One of ``values`` must equal ``binding.token_nonce()`` exactly; raise NONCE_BINDING_MISMATCH."""
    if binding.user_data:
        raise NONCE_BINDING_MISMATCH(f"{kind} cannot bind user_data; request a nonce without user data")
    expected = binding.token_nonce().encode("ascii")
    matched = False
    for value in values:
        # Compare every candidate (no early exit) so timing does not reveal which one matched.
        if hmac.compare_digest(value.encode("utf-8"), expected):
            matched = True
    if not matched:
        raise NONCE_BINDING_MISMATCH(f"{kind} does not bind the expected nonce")


def provenance(
    *,
    iss: str,
    header: Mapping[str, Any],
    payload: Mapping[str, Any],
    token_sha256: str,
    key_source: str,
    key_url: str | None,
    validity: Validity,
    audience: AudienceCheck,
    ignored_headers: Sequence[str],
    **extra: Any,
) -> dict[str, Any]:
    """The ``upstream`` verifier claim: where the token came from and how its key was found."""
    jti = payload.get("jti")
    record: dict[str, Any] = {
        "iss": iss,
        "kid": header.get("kid") if isinstance(header.get("kid"), str) else None,
        "jti": jti if isinstance(jti, str) else None,
        "alg": header.get("alg"),
        "token_sha256": token_sha256,
        "key_source": key_source,
        "key_url": key_url,
        "iat": validity.iat.isoformat(),
        "exp": validity.exp.isoformat(),
        "aud": list(audience.audiences),
        "audience_checked": audience.matched is not None,
        "ignored_headers": list(ignored_headers),
    }
    record.update(extra)
    return record
