"""Issuer key sets (RFC 7517 JWK/JWKS, OIDC Discovery 1.0 §4) fetched only from pinned issuer locations.

* Every fetch goes through ``ctx.collateral`` (memory → shared store → origin); the bytes are re-parsed on
  every use (parsed key sets are memoized by the SHA-256 of the body, which is the same thing).
* A ``kid`` that is not in the cached key set triggers at most ONE forced refetch per issuer per cooldown
  window (``refetch_cooldown``), so tokens with random kids cannot cause a refetch storm.
* ``url_override`` rewrites URL prefixes (``{"https://issuer.example": "http://127.0.0.1:8123/x"}``) for
  tests and local replay tooling; it is a constructor argument of the verifiers, never reachable from requests.

x5c entries are accepted as RFC 7515 base64 DER and, because real Google PKI tokens have carried them that
way, as PEM text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from attestation_broker import jsonlimits
from attestation_broker.errors import CERT_CHAIN_INVALID, COLLATERAL_INVALID, BrokerError
from attestation_broker.evidence.jose.errors import UPSTREAM_TOKEN_KEY_UNKNOWN
from attestation_broker.evidence.jose.jws import PublicKey
from attestation_broker.trust.cache import CachedObject
from attestation_broker.trust.x509 import parse_der_certificate, parse_pem_certificates
from attestation_broker.verifier import VerifyContext

MIN_RSA_BITS = 2048
_CURVES: dict[str, ec.EllipticCurve] = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}


@dataclass(frozen=True)
class IssuerKey:
    kid: str
    key: PublicKey
    # Validity of the certificate that carried the key (x5c in the JWK), when there was one.
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True)
class ResolvedKey:
    key: IssuerKey
    collateral: tuple[dict[str, Any], ...]
    key_url: str
    refetched: bool


def load_x5c_entry(entry: object) -> x509.Certificate:
    """One x5c entry: base64 DER (RFC 7515 §4.1.6) or PEM text; raise CERT_CHAIN_INVALID otherwise."""
    if not isinstance(entry, str) or not entry:
        raise CERT_CHAIN_INVALID("x5c entry is not a non-empty string")
    try:
        if "-----BEGIN CERTIFICATE-----" in entry:
            certs = parse_pem_certificates(entry.encode("ascii"))
            if len(certs) != 1:
                raise ValueError("one certificate per x5c entry")
            return certs[0]
        return parse_der_certificate(base64.b64decode(entry, validate=True))
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise CERT_CHAIN_INVALID("x5c entry is not a certificate in base64 DER or PEM") from None


def _b64url_int(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("missing integer")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return int.from_bytes(raw, "big")


def _check_strength(key: PublicKey) -> PublicKey:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError("RSA key too small")
    return key


def key_from_jwk(jwk: Mapping[str, Any]) -> IssuerKey:
    """Public key of one JWK (RSA n/e, EC x/y, or the leaf of its x5c); ValueError when unusable."""
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("JWK without kid")
    if jwk.get("use", "sig") != "sig":
        raise ValueError("JWK not for signatures")
    kty = jwk.get("kty")
    from_members: PublicKey | None = None
    if kty == "RSA" and "n" in jwk:
        from_members = rsa.RSAPublicNumbers(_b64url_int(jwk.get("e")), _b64url_int(jwk.get("n"))).public_key()
    elif kty == "EC" and "x" in jwk:
        curve = _CURVES.get(str(jwk.get("crv")))
        if curve is None:
            raise ValueError("unsupported curve")
        numbers = ec.EllipticCurvePublicNumbers(_b64url_int(jwk.get("x")), _b64url_int(jwk.get("y")), curve)
        from_members = numbers.public_key()
    elif kty not in ("RSA", "EC"):
        raise ValueError("unsupported kty")
    not_before = not_after = None
    x5c = jwk.get("x5c")
    if x5c is not None:
        if not isinstance(x5c, list) or not x5c:
            raise ValueError("bad x5c")
        try:
            cert = load_x5c_entry(x5c[0])
        except BrokerError:
            raise ValueError("bad x5c certificate") from None
        cert_key = cert.public_key()
        if not isinstance(cert_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
            raise ValueError("unsupported certificate key")
        if from_members is not None and from_members.public_numbers() != cert_key.public_numbers():
            raise ValueError("JWK members and x5c certificate disagree")
        from_members = cert_key
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if from_members is None:
        raise ValueError("JWK carries no key")
    return IssuerKey(kid, _check_strength(from_members), not_before, not_after)


def parse_jwks(body: bytes) -> dict[str, IssuerKey]:
    """Keys by kid. Unusable keys are skipped; a kid bound to two different keys is COLLATERAL_INVALID."""
    doc = jsonlimits.loads(body, COLLATERAL_INVALID, "key set")
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise COLLATERAL_INVALID("key set has no 'keys' array")
    keys: dict[str, IssuerKey] = {}
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict):
            continue
        try:
            key = key_from_jwk(jwk)
        except (ValueError, TypeError, binascii.Error):
            continue  # one unusable key must not hide the others
        previous = keys.get(key.kid)
        if previous is not None and previous.key.public_numbers() != key.key.public_numbers():
            raise COLLATERAL_INVALID(f"key set binds kid {key.kid[:64]!r} to two different keys")
        keys[key.kid] = key
    return keys


def collateral_record(kind: str, logical_url: str, obj: CachedObject) -> dict[str, Any]:
    return {
        "type": kind,
        "url": logical_url,
        "issued": obj.fetched_at.isoformat(),
        "next_update": obj.expires_at.isoformat() if obj.expires_at else None,
        "source": obj.source,
        "stale": obj.stale,
    }


class KeySource:
    """Fetches JSON documents and key sets from pinned locations, with kid-miss refetch and a cooldown."""

    def __init__(
        self,
        *,
        url_override: Mapping[str, str] | None = None,
        refetch_cooldown: timedelta = timedelta(minutes=5),
        ttl: timedelta = timedelta(hours=1),
    ) -> None:
        # Longest prefix first so a more specific override wins.
        self._overrides = sorted((url_override or {}).items(), key=lambda kv: -len(kv[0]))
        self._cooldown = refetch_cooldown
        self._ttl = ttl
        self._last_forced: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._parsed: OrderedDict[str, dict[str, IssuerKey]] = OrderedDict()

    def location(self, logical_url: str) -> str:
        """The URL actually fetched: ``logical_url`` with a configured prefix override applied."""
        for prefix, base in self._overrides:
            prefix = prefix.rstrip("/")
            if logical_url == prefix or logical_url.startswith(prefix + "/"):
                return base.rstrip("/") + logical_url[len(prefix) :]
        return logical_url

    def get(
        self,
        ctx: VerifyContext,
        logical_url: str,
        *,
        validate: Callable[[bytes], None],
        ttl: timedelta | None = None,
        force: bool = False,
    ) -> CachedObject:
        now = ctx.now
        expires_at = now + (ttl or self._ttl)
        url = self.location(logical_url)
        if force:
            return ctx.collateral.refresh(
                url, now=now, expires=lambda _b: expires_at, validate=validate, collateral_type="jwks"
            )
        return ctx.collateral.get(
            url,
            now=now,
            expires=lambda _b: expires_at,
            validate=validate,
            stale_grace=timedelta(seconds=ctx.settings.collateral_stale_grace_seconds),
            collateral_type="jwks",
        )

    def _keys(self, body: bytes) -> dict[str, IssuerKey]:
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            cached = self._parsed.get(digest)
        if cached is not None:
            return cached
        keys = parse_jwks(body)
        with self._lock:
            self._parsed[digest] = keys
            while len(self._parsed) > 64:
                self._parsed.popitem(last=False)
        return keys

    def _may_refetch(self, issuer: str, now: datetime) -> bool:
        with self._lock:
            last = self._last_forced.get(issuer)
            # abs(): a pinned or stepped-back clock must not open the gate either.
            if last is not None and abs(now - last) < self._cooldown:
                return False
            self._last_forced[issuer] = now
            return True

    def resolve(self, ctx: VerifyContext, *, issuer: str, jwks_url: str, kid: str) -> ResolvedKey:
        """The key for ``kid`` in the key set at ``jwks_url`` (a pinned location of ``issuer``)."""

        def validate(body: bytes) -> None:
            self._keys(body)

        obj = self.get(ctx, jwks_url, validate=validate)
        records = [collateral_record("jwks", jwks_url, obj)]
        key = self._keys(obj.body).get(kid)
        refetched = False
        if key is None:
            if not self._may_refetch(issuer, ctx.now):
                raise UPSTREAM_TOKEN_KEY_UNKNOWN(f"kid not in the key set of {issuer} (refetch cooling down)")
            obj = self.get(ctx, jwks_url, validate=validate, force=True)
            refetched = True
            records = [collateral_record("jwks", jwks_url, obj)]
            key = self._keys(obj.body).get(kid)
            if key is None:
                raise UPSTREAM_TOKEN_KEY_UNKNOWN(f"kid not in the key set of {issuer}")
        return ResolvedKey(key=key, collateral=tuple(records), key_url=jwks_url, refetched=refetched)
