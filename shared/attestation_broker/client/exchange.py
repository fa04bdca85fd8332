"""The guest's side of the broker HTTP API (docs/api.md): challenge, attest, ``/jwks``, token exchange.

``POST /v1/challenge`` → ``{"nonce": hex, "expires_at"}``; ``POST /v1/attest/{kind}`` with the JSON envelope
(``evidence``/``extras`` base64, ``nonce`` hex, ``user_data`` base64, kind fields) → ``{"token", "claims"}``;
``GET /jwks`` → the broker's published keys, against which the returned token is verified before it is
written (the client never trusts a token it cannot verify: a MITM or a misconfigured URL would otherwise
hand the workload an arbitrary JWT). ``POST /v1/token`` is the RFC 8693 §2.1 token exchange, done by
:func:`attestation_broker.federation.exchange` over this module's transport.

HTTP is urllib (stdlib): four requests do not justify a dependency in the guest. The transport is one
injectable callable so tests and other runtimes can substitute it.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt

from attestation_broker.client.errors import (
    CLIENT_BROKER_REFUSED,
    CLIENT_BROKER_RESPONSE_INVALID,
    CLIENT_BROKER_UNREACHABLE,
    CLIENT_TOKEN_UNVERIFIED,
    BrokerRefused,
)

MAX_RESPONSE_BYTES = 4 * 1024 * 1024
ALGORITHMS = ("ES256", "RS256")


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


Transport = Callable[[str, str, bytes | None, Mapping[str, str]], HttpReply]


def urllib_transport(timeout: float = 30.0) -> Transport:
    def send(method: str, url: str, body: bytes | None, headers: Mapping[str, str]) -> HttpReply:
        if not url.startswith(("https://", "http://")):
            raise CLIENT_BROKER_UNREACHABLE(f"broker URL must be http(s): {url!r}")
        request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
                return HttpReply(response.status, response.read(MAX_RESPONSE_BYTES), dict(response.headers.items()))
        except urllib.error.HTTPError as exc:
            return HttpReply(exc.code, exc.read(MAX_RESPONSE_BYTES), dict(exc.headers.items()) if exc.headers else {})
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CLIENT_BROKER_UNREACHABLE(f"{url}: {reason}") from None

    return send


@dataclass(frozen=True)
class Challenge:
    nonce_hex: str
    expires_at: str

    @property
    def nonce(self) -> bytes:
        return bytes.fromhex(self.nonce_hex)


@dataclass(frozen=True)
class Issued:
    token: str
    claims: Mapping[str, Any]


def _json(reply: HttpReply, what: str) -> Any:
    try:
        return json.loads(reply.body)
    except (ValueError, UnicodeDecodeError):
        raise CLIENT_BROKER_RESPONSE_INVALID(f"{what}: HTTP {reply.status}, body is not JSON") from None


def _refused(reply: HttpReply, what: str) -> BrokerRefused:
    """A broker problem document (RFC 9457) → CLIENT_BROKER_REFUSED naming the broker's own code."""
    code, detail = "HTTP_" + str(reply.status), ""
    try:
        doc = json.loads(reply.body)
        if isinstance(doc, dict):
            # RFC 9457 problem documents carry code/detail; /v1/token answers RFC 6749 §5.2 error objects.
            code = str(doc.get("code") or doc.get("error") or code)
            detail = str(doc.get("detail") or doc.get("error_description") or "")
    except (ValueError, UnicodeDecodeError):
        pass
    detail = f"{what}: {code} ({reply.status}) {detail}".rstrip()
    return BrokerRefused(CLIENT_BROKER_REFUSED, detail, broker_code=code, broker_status=reply.status)


class BrokerClient:
    """The broker's HTTP API as seen from the guest. ``base_url`` is the broker root (no trailing path)."""

    def __init__(self, base_url: str, *, transport: Transport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._send = transport or urllib_transport()

    def _post_json(self, path: str, doc: Mapping[str, Any] | None) -> HttpReply:
        body = json.dumps(doc).encode() if doc is not None else b""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return self._send("POST", self.base_url + path, body, headers)

    def challenge(self) -> Challenge:
        reply = self._post_json("/v1/challenge", None)
        if reply.status != 200:
            raise _refused(reply, "challenge")
        doc = _json(reply, "challenge")
        nonce = doc.get("nonce") if isinstance(doc, dict) else None
        if not isinstance(nonce, str):
            raise CLIENT_BROKER_RESPONSE_INVALID("challenge: no nonce in the answer")
        try:
            bytes.fromhex(nonce)
        except ValueError:
            raise CLIENT_BROKER_RESPONSE_INVALID("challenge: the nonce is not hex") from None
        return Challenge(nonce, str(doc.get("expires_at", "")))

    def attest(self, kind: str, envelope: Mapping[str, Any]) -> Issued:
        reply = self._post_json(f"/v1/attest/{urllib.parse.quote(kind, safe='')}", envelope)
        if reply.status != 200:
            raise _refused(reply, f"attest/{kind}")
        doc = _json(reply, f"attest/{kind}")
        if not isinstance(doc, dict) or not isinstance(doc.get("token"), str):
            raise CLIENT_BROKER_RESPONSE_INVALID(f"attest/{kind}: no token in the answer")
        claims = doc.get("claims")
        return Issued(doc["token"], claims if isinstance(claims, dict) else {})

    def jwks(self) -> dict[str, Any]:
        reply = self._send("GET", self.base_url + "/jwks", None, {"Accept": "application/json"})
        if reply.status != 200:
            raise _refused(reply, "jwks")
        doc = _json(reply, "jwks")
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise CLIENT_BROKER_RESPONSE_INVALID("jwks: no keys")
        return doc

    def exchange(self, subject_token: str, audience: str) -> Issued:
        """RFC 8693 token exchange at ``/v1/token`` for ``audience``: the workload federation client's
        :func:`attestation_broker.federation.exchange` over this client's transport (one implementation)."""
        from attestation_broker.federation import exchange

        token = exchange(self.base_url, subject_token, audience, transport=self._send)
        return Issued(
            token.access_token, {"expires_in": token.expires_in, "issued_token_type": token.issued_token_type}
        )


def verify_token(
    token: str, jwks: Mapping[str, Any], *, now: datetime, nonce_hex: str | None, issuer: str | None = None
) -> dict[str, Any]:
    """Verify ``token`` with the key its ``kid`` names in ``jwks``; check time claims against ``now`` and
    that ``eat_nonce`` is the nonce this client obtained (so the token answers *this* challenge)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise CLIENT_TOKEN_UNVERIFIED("not a compact JWS") from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise CLIENT_TOKEN_UNVERIFIED(f"unexpected algorithm {alg!r}")
    jwk = next((k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == header.get("kid")), None)
    if jwk is None:
        raise CLIENT_TOKEN_UNVERIFIED("the token's kid is not in the broker's /jwks")
    try:
        key = jwt.PyJWK(jwk).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            issuer=issuer,
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise CLIENT_TOKEN_UNVERIFIED(type(exc).__name__) from None
    ts = int(now.timestamp())
    if not isinstance(claims.get("exp"), int) or ts >= claims["exp"]:
        raise CLIENT_TOKEN_UNVERIFIED("token expired or without exp")
    if nonce_hex is not None and claims.get("eat_nonce") != nonce_hex.lower():
        raise CLIENT_TOKEN_UNVERIFIED("eat_nonce is not the nonce of this attestation")
    return claims


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
