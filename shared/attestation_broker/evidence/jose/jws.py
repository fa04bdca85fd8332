"""Compact JWS parsing and signature verification for upstream tokens (RFC 7515 §3.1, §7.1; RFC 8725 §3.1).

The token is parsed here only to route it (``alg``, ``kid``, ``iss``, ``x5c``) *before* any key is fetched;
claims are taken from the payload PyJWT returns after the signature verified. Rules (RFC 8725 §2, §3):

* size is capped before anything is decoded (64 KiB by default);
* base64url segments are strict (no padding, no foreign characters); header and payload are JSON objects
  with no duplicate member names (two parsers could otherwise disagree on the same bytes);
* ``alg`` must be in the caller's explicit allow-list (``none`` and HMAC are never in one);
* ``crit`` is rejected (we implement no extension); ``jku``/``x5u``/``jwk`` are never used to find a key and
  are only recorded as ignored;
* signatures are checked by PyJWT with ``algorithms=[alg]`` and a key object of the right type; PyJWT's own
  time checks are switched off because they read the wall clock; :mod:`.checks` does them with injected ``now``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation_broker import jsonlimits
from attestation_broker.errors import TOKEN_INVALID, TOKEN_MALFORMED
from attestation_broker.evidence.jose.errors import (
    UPSTREAM_TOKEN_ALG_REJECTED,
    UPSTREAM_TOKEN_HEADER_REJECTED,
    UPSTREAM_TOKEN_MISSING,
    UPSTREAM_TOKEN_SIGNATURE_INVALID,
    UPSTREAM_TOKEN_TOO_LARGE,
)

MAX_TOKEN_BYTES = 64 * 1024
# Headers that name a key location or carry a key: never followed, only recorded (RFC 8725 §3.10).
KEY_LOCATOR_HEADERS = ("jku", "x5u", "jwk", "x5c")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

log = logging.getLogger("attestation_broker")


@dataclass(frozen=True)
class CompactJws:
    """A syntactically valid compact JWS whose signature is NOT yet verified."""

    token: str
    header: Mapping[str, Any]
    unverified_payload: Mapping[str, Any]
    sha256: str

    @property
    def alg(self) -> str:
        return str(self.header.get("alg"))

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


def b64url_segment(segment: str, what: str) -> bytes:
    if not _B64URL.match(segment) or len(segment) % 4 == 1:
        raise TOKEN_MALFORMED(f"token {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TOKEN_MALFORMED(f"token {what} is not base64url") from None


def json_object(data: bytes, what: str) -> dict[str, Any]:
    value = jsonlimits.loads(data, TOKEN_MALFORMED, f"token {what}", object_pairs_hook=jsonlimits.unique_members)
    if not isinstance(value, dict):
        raise TOKEN_MALFORMED(f"token {what} is not a JSON object")
    return value


def token_text(evidence: bytes, fields: Mapping[str, Any], *, max_bytes: int = MAX_TOKEN_BYTES) -> bytes:
    """The token bytes: the raw evidence, or the envelope field ``token`` when the evidence is empty."""
    data = evidence
    if not data.strip():
        field = fields.get("token")
        if field is None:
            raise UPSTREAM_TOKEN_MISSING("no token in the evidence or the 'token' field")
        if not isinstance(field, str):
            raise TOKEN_MALFORMED("field 'token' must be a string")
        if len(field) > max_bytes:
            raise UPSTREAM_TOKEN_TOO_LARGE(f"token exceeds {max_bytes} bytes")
        data = field.encode("utf-8", errors="replace")
    return data


def parse_compact(data: bytes, *, max_bytes: int = MAX_TOKEN_BYTES) -> CompactJws:
    """Split and decode a compact JWS; raise TOKEN_MALFORMED / UPSTREAM_TOKEN_TOO_LARGE."""
    if len(data) > max_bytes:
        raise UPSTREAM_TOKEN_TOO_LARGE(f"token is {len(data)} bytes; the limit is {max_bytes}")
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise TOKEN_MALFORMED("token is not ASCII") from None
    if not text:
        raise UPSTREAM_TOKEN_MISSING("the token is empty")
    parts = text.split(".")
    if len(parts) != 3:
        raise TOKEN_MALFORMED(f"compact JWS has {len(parts)} segments, expected 3")
    header = json_object(b64url_segment(parts[0], "header"), "header")
    payload = json_object(b64url_segment(parts[1], "payload"), "payload")
    b64url_segment(parts[2], "signature")
    return CompactJws(
        token=text,
        header=header,
        unverified_payload=payload,
        sha256=hashlib.sha256(text.encode("ascii")).hexdigest(),
    )


def check_header(jws: CompactJws, allowed_algs: Collection[str]) -> list[str]:
    """Apply the algorithm allow-list and header rules; return the ignored key-locator header names."""
    alg = jws.header.get("alg")
    if not isinstance(alg, str) or alg not in allowed_algs:
        shown = alg if isinstance(alg, str) and len(alg) <= 16 else type(alg).__name__
        raise UPSTREAM_TOKEN_ALG_REJECTED(f"alg {shown!r} is not in the allow-list {sorted(allowed_algs)}")
    if "crit" in jws.header:
        raise UPSTREAM_TOKEN_HEADER_REJECTED("'crit' header extensions are not supported")
    if "kid" in jws.header and not isinstance(jws.header["kid"], str):
        raise TOKEN_MALFORMED("header 'kid' must be a string")
    return [name for name in KEY_LOCATOR_HEADERS if name in jws.header]


def _key_matches_alg(key: PublicKey, alg: str) -> bool:
    if alg.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if alg.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePublicKey)
    return False


def verify_signature(jws: CompactJws, key: PublicKey) -> dict[str, Any]:
    """Verify the signature with ``key`` for the header's (already allow-listed) alg; return the payload."""
    if not _key_matches_alg(key, jws.alg):
        raise UPSTREAM_TOKEN_ALG_REJECTED(f"alg {jws.alg} does not fit the issuer's key type")
    try:
        payload = jwt.decode(
            jws.token,
            key=key,
            algorithms=[jws.alg],
            options={
                "verify_signature": True,
                # Time, audience and issuer are checked by attestation_broker.evidence.jose.checks with injected now.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise UPSTREAM_TOKEN_SIGNATURE_INVALID("token signature does not verify with the issuer's key") from None
    except jwt.InvalidAlgorithmError:
        raise UPSTREAM_TOKEN_ALG_REJECTED(f"alg {jws.alg} rejected by the JWT library") from None
    except jwt.DecodeError:
        raise TOKEN_MALFORMED("token cannot be decoded") from None
    except jwt.PyJWTError as exc:
        log.info("upstream token rejected by PyJWT: %s", type(exc).__name__)
        raise TOKEN_INVALID("token claims or header rejected by the JWT library") from None
    if not isinstance(payload, dict):
        raise TOKEN_MALFORMED("token payload is not a JSON object")
    return payload
