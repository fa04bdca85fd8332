"""Scheduled collateral refresh (docs/architecture.md "Trust and collateral"): keep the shared store warm and current.

The refresher walks every object in the shared store (each records its URL and a collateral type tag,
see :meth:`CachedObject.encode`), re-fetches it from the vendor origin through the one Fetcher port,
validates it structurally for its type, and writes it back atomically. Requests then find fresh
collateral in the store instead of waiting on a vendor. The cache never vouches for bytes: verifiers
still verify signatures and dates on every use, so validation here only keeps garbage out.

Rules:
- immutable types (a VCEK/VLEK for one chip and TCB, AMD's ARK/ASK chain) are never re-fetched;
- untagged objects are left alone (without a type the refresher cannot derive their expiry);
- an object whose key is not the cache key of its own URL is ignored, so a stray object cannot make
  the refresher fetch an arbitrary URL;
- a fetched copy that expires earlier than the stored one (a lagging CDN) does not replace it;
- refreshers running concurrently are harmless: each put replaces one whole object with a validated
  copy of the same URL (S3 PutObject and the directory store's rename are atomic).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509

from attestation_broker.errors import COLLATERAL_INVALID, BrokerError
from attestation_broker.trust.cache import BlobStore, CachedObject, CollateralCache, issuer_chain_from_headers
from attestation_broker.trust.currency import TcbCurrency
from attestation_broker.trust.fetch import Fetcher

ExpiresFn = Callable[[bytes, datetime], datetime | None]


@dataclass(frozen=True)
class CollateralType:
    """How to validate a collateral type's bytes and when a copy fetched at ``fetched_at`` expires."""

    name: str
    immutable: bool
    expires: ExpiresFn
    validate: Callable[[bytes], None]

    def expires_from(self, fetched_at: datetime) -> Callable[[bytes], datetime | None]:
        """The ``expires`` callable for ``CollateralCache.get`` (same rule as the refresher's)."""
        return lambda body: self.expires(body, fetched_at)


def _never(_body: bytes, _fetched_at: datetime) -> datetime | None:
    return None


def _load_crl(body: bytes) -> x509.CertificateRevocationList:
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(body)
        return x509.load_der_x509_crl(body)
    except ValueError:
        raise COLLATERAL_INVALID("CRL does not parse") from None


def _crl_next_update(body: bytes, _fetched_at: datetime) -> datetime:
    next_update = _load_crl(body).next_update_utc
    if next_update is None:
        raise COLLATERAL_INVALID("CRL has no nextUpdate")
    return next_update


def _validate_crl(body: bytes) -> None:
    _crl_next_update(body, datetime.min)


def _validate_certificates(body: bytes) -> None:
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            if not x509.load_pem_x509_certificates(body):
                raise ValueError("empty")
        else:
            x509.load_der_x509_certificate(body)
    except ValueError:
        raise COLLATERAL_INVALID("certificate does not parse") from None


def _json_object(body: bytes) -> dict[str, object]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise COLLATERAL_INVALID("collateral is not JSON") from None
    if not isinstance(doc, dict):
        raise COLLATERAL_INVALID("collateral JSON is not an object")
    return doc


def _intel_next_update(member: str) -> ExpiresFn:
    """Intel PCS TCB info / enclave identity: ``{member: {..., "nextUpdate": ISO 8601}, "signature": hex}``."""

    def expires(body: bytes, _fetched_at: datetime) -> datetime:
        inner = _json_object(body).get(member)
        if not isinstance(inner, dict) or not isinstance(inner.get("nextUpdate"), str):
            raise COLLATERAL_INVALID(f"{member}.nextUpdate missing")
        try:
            return datetime.fromisoformat(str(inner["nextUpdate"]).replace("Z", "+00:00"))
        except ValueError:
            raise COLLATERAL_INVALID(f"{member}.nextUpdate is not a date") from None

    return expires


def _validate_with(expires: ExpiresFn) -> Callable[[bytes], None]:
    def validate(body: bytes) -> None:
        expires(body, datetime.min)

    return validate


JWKS_MAX_AGE = timedelta(hours=1)


def _jwks_expires(body: bytes, fetched_at: datetime) -> datetime:
    keys = _json_object(body).get("keys")
    if not isinstance(keys, list) or not keys:
        raise COLLATERAL_INVALID("JWKS has no keys")
    return fetched_at + JWKS_MAX_AGE


def _collateral_types() -> dict[str, CollateralType]:
    tcb_info = _intel_next_update("tcbInfo")
    qe_identity = _intel_next_update("enclaveIdentity")
    types = [
        CollateralType("vcek", True, _never, _validate_certificates),
        CollateralType("vlek", True, _never, _validate_certificates),
        CollateralType("cert_chain", True, _never, _validate_certificates),
        CollateralType("crl", False, _crl_next_update, _validate_crl),
        CollateralType("tcb_info", False, tcb_info, _validate_with(tcb_info)),
        CollateralType("qe_identity", False, qe_identity, _validate_with(qe_identity)),
        CollateralType("jwks", False, _jwks_expires, _validate_with(_jwks_expires)),
    ]
    return {t.name: t for t in types}


# The registry, keyed by the tag verifiers pass as ``CollateralCache.get(..., collateral_type=...)``.
COLLATERAL_TYPES: Mapping[str, CollateralType] = _collateral_types()


class ListableStore(BlobStore, Protocol):
    def keys(self, under: str = "") -> Iterator[str]: ...


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    skipped_immutable: int = 0
    skipped_untyped: int = 0
    kept_newer: int = 0
    ignored: int = 0  # damaged, or key does not match the URL it records
    deferred: int = 0  # not reached before the deadline
    failed: dict[str, str] = field(default_factory=dict)  # url → error code

    def as_dict(self) -> dict[str, object]:
        return {
            "refreshed": len(self.refreshed),
            "skipped_immutable": self.skipped_immutable,
            "skipped_untyped": self.skipped_untyped,
            "kept_newer": self.kept_newer,
            "ignored": self.ignored,
            "deferred": self.deferred,
            "failed": dict(self.failed),
        }


def refresh_store(
    store: ListableStore,
    fetcher: Fetcher,
    *,
    now: datetime,
    timeout: float = 3.0,
    types: Mapping[str, CollateralType] = COLLATERAL_TYPES,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    currency: TcbCurrency | None = None,
) -> RefreshReport:
    """Re-fetch every mutable, typed collateral object in ``store``; see the module docstring.

    With ``currency``, every Intel TCB info (as refreshed) and every AMD VCEK in the store is also handed to
    :class:`~attestation_broker.trust.currency.TcbCurrency`, which records and announces TCB changes.
    """
    report = RefreshReport()
    for key in list(store.keys("collateral/")):
        if deadline is not None and clock() >= deadline:
            report.deferred += 1
            continue
        try:
            data = store.get(key)
        except BrokerError as exc:
            report.failed[key] = exc.code.name
            continue
        stored = CachedObject.decode(data, "store") if data is not None else None
        if stored is None or CollateralCache.key(stored.url) != key:
            report.ignored += 1
            continue
        kind = types.get(stored.collateral_type or "")
        if kind is None:
            report.skipped_untyped += 1
            continue
        if kind.immutable or stored.expires_at is None:
            if currency is not None and kind.name == "vcek":
                currency.observe_amd_vcek(stored.body, now)
            report.skipped_immutable += 1
            continue
        try:
            response = fetcher.get(stored.url, timeout=timeout)
            body = response.body
            kind.validate(body)
            expires_at = kind.expires(body, now)
            if expires_at is not None and expires_at < stored.expires_at:
                report.kept_newer += 1
                if currency is not None and kind.name == "tcb_info":
                    currency.observe_intel_tcb_info(stored.body, now)
                continue
            fresh = CachedObject(
                stored.url,
                body,
                now,
                expires_at,
                "origin",
                collateral_type=kind.name,
                issuer_chain=issuer_chain_from_headers(response.headers),
            )
            store.put(key, fresh.encode())
        except BrokerError as exc:
            report.failed[stored.url] = exc.code.name
            if currency is not None and kind.name == "tcb_info":
                currency.observe_intel_tcb_info(stored.body, now)
            continue
        if currency is not None and kind.name == "tcb_info":
            currency.observe_intel_tcb_info(body, now)
        report.refreshed.append(stored.url)
    if currency is not None:
        currency.save()
    return report
