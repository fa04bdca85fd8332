"""Tiered collateral cache: memory → shared store → vendor origin (docs/architecture.md "Trust and collateral").

The cache only stores bytes and the freshness window the caller derived from them; it never vouches
for them. Callers re-verify every object they get, whatever tier it came from. A caller-supplied
``validate`` runs before anything fetched is cached, so garbage from an origin is not stored. When the
origin is down, a copy past its expiry is served only within ``stale_grace`` and is marked ``stale``.

Shared stores implement :class:`BlobStore` (local directory here, S3 on AWS); writes are atomic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from attestation_broker.errors import COLLATERAL_EXPIRED, COLLATERAL_UNAVAILABLE, Unavailable
from attestation_broker.files import atomic_write
from attestation_broker.trust.bundle import Bundle
from attestation_broker.trust.fetch import Fetcher


class BlobStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...


class DirectoryStore:
    """A BlobStore on a local directory; each put is a rename of a complete temporary file."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        safe = hashlib.sha256(key.encode()).hexdigest()
        return self._root / safe[:2] / safe

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)


@dataclass(frozen=True)
class CachedObject:
    url: str
    body: bytes
    fetched_at: datetime
    expires_at: datetime | None  # None: immutable (e.g. a VCEK for one chip and TCB)
    source: str  # "memory" | "bundle" | "store" | "origin"
    stale: bool = False
    # Collateral type tag ("crl", "tcb_info", ...) recorded with the object so the scheduled refresher
    # (attestation_broker.trust.refresh) knows how to re-validate it; None: untyped, never refreshed in the background.
    collateral_type: str | None = None
    # The issuer chain (PEM) the origin sent beside the body (Intel PCS ``TCB-Info-Issuer-Chain``,
    # ``SGX-Enclave-Identity-Issuer-Chain``, ``SGX-PCK-CRL-Issuer-Chain`` headers, URL-decoded); None if none.
    issuer_chain: bytes | None = None

    def fresh_at(self, now: datetime) -> bool:
        return self.expires_at is None or now <= self.expires_at

    def encode(self) -> bytes:
        meta = json.dumps(
            {
                "url": self.url,
                "fetched_at": self.fetched_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "type": self.collateral_type,
                # Added later: entries written before it decode with issuer_chain=None (a compatible extension).
                "issuer_chain": self.issuer_chain.decode("ascii") if self.issuer_chain else None,
            }
        ).encode()
        return struct.pack(">I", len(meta)) + meta + self.body

    @classmethod
    def decode(cls, data: bytes, source: str) -> CachedObject | None:
        try:
            (n,) = struct.unpack(">I", data[:4])
            meta = json.loads(data[4 : 4 + n])
            expires = meta["expires_at"]
            tag = meta.get("type")
            chain = meta.get("issuer_chain")
            return cls(
                url=str(meta["url"]),
                body=data[4 + n :],
                fetched_at=datetime.fromisoformat(meta["fetched_at"]),
                expires_at=datetime.fromisoformat(expires) if expires else None,
                source=source,
                collateral_type=str(tag) if tag is not None else None,
                issuer_chain=str(chain).encode("ascii") if chain else None,
            )
        except (struct.error, ValueError, KeyError, TypeError, UnicodeError):
            return None  # a damaged cache entry is a miss, never an error


ISSUER_CHAIN_HEADERS = (
    "tcb-info-issuer-chain",  # PCS/PCCS v4 TCB info
    "sgx-tcb-info-issuer-chain",  # PCS v3 / older PCCS TCB info
    "sgx-enclave-identity-issuer-chain",  # QE identity
    "sgx-pck-crl-issuer-chain",  # PCK CRL
)


def issuer_chain_from_headers(headers: Mapping[str, str]) -> bytes | None:
    """The issuer chain header of a PCS/PCCS response, URL-decoded to PEM (None when absent)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ISSUER_CHAIN_HEADERS:
        value = lowered.get(name)
        if value:
            return urllib.parse.unquote(value).encode("ascii", "replace")
    return None


@dataclass
class CacheStats:
    memory_hits: int = 0
    store_hits: int = 0
    origin_fetches: int = 0
    stale_served: int = 0
    store_errors: int = 0


class CollateralCache:
    """Memory (LRU) → optional shared store → origin fetcher."""

    def __init__(
        self,
        fetcher: Fetcher,
        store: BlobStore | None = None,
        *,
        timeout: float = 3.0,
        memory_entries: int = 1024,
        bundle: Bundle | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.store = store
        # A read-only collateral bundle (BROKER_COLLATERAL_DIR / --collateral), consulted after memory and
        # before the shared store and the upstreams; its objects are verified like fetched ones.
        self.bundle = bundle
        self.timeout = timeout
        self._memory: OrderedDict[str, CachedObject] = OrderedDict()
        # The copy a memory hit returns (source "memory"), built once per remembered object: dataclasses.replace
        # on every hit was most of a cached lookup's cost.
        self._views: dict[str, tuple[CachedObject, CachedObject]] = {}
        self._memory_entries = memory_entries
        self._lock = threading.Lock()
        self.stats = CacheStats()
        # URLs fetched through this cache: the scheduled refresher re-fetches these.
        self.seen: set[str] = set()

    @staticmethod
    def key(url: str) -> str:
        return "collateral/" + hashlib.sha256(url.encode()).hexdigest()

    def _remember(self, obj: CachedObject) -> None:
        with self._lock:
            self._memory[obj.url] = obj
            self._memory.move_to_end(obj.url)
            while len(self._memory) > self._memory_entries:
                evicted, _ = self._memory.popitem(last=False)
                self._views.pop(evicted, None)

    def _from_store(self, url: str) -> CachedObject | None:
        if self.store is None:
            return None
        try:
            data = self.store.get(self.key(url))
        except Exception:  # noqa: BLE001 - a broken shared store degrades to the origin
            self.stats.store_errors += 1
            return None
        if data is None:
            return None
        obj = CachedObject.decode(data, "store")
        return obj if obj is not None and obj.url == url else None

    def _from_bundle(
        self,
        url: str,
        now: datetime,
        expires: Callable[[bytes], datetime | None],
        collateral_type: str | None,
        chained: bool,
    ) -> CachedObject | None:
        if self.bundle is None:
            return None
        found = self.bundle.lookup_url(url)
        if found is None:
            return None
        data, entry = found
        chain = issuer_chain_from_headers(entry.headers)
        if chained and not chain:
            return None
        return CachedObject(
            url, data, now, expires(data), "bundle", collateral_type=collateral_type, issuer_chain=chain
        )

    def get(
        self,
        url: str,
        *,
        now: datetime,
        expires: Callable[[bytes], datetime | None],
        validate: Callable[[bytes], None] | None = None,
        stale_grace: timedelta = timedelta(0),
        collateral_type: str | None = None,
        validate_chained: Callable[[bytes, bytes | None], None] | None = None,
    ) -> CachedObject:
        """Return collateral for ``url`` fresh at ``now``; see the module docstring for the tiers.

        ``expires`` derives the end of validity from the bytes (e.g. a CRL's nextUpdate) and returns
        None for immutable objects. ``validate`` raises (typed error) when fetched bytes are unusable.
        ``collateral_type`` tags what is stored so the background refresher can re-validate it.
        ``validate_chained`` (body, issuer chain) replaces ``validate`` for objects signed by a certificate
        the origin sends in a header: a copy stored without its chain (written by an older version) is a miss.
        """
        self.seen.add(url)
        with self._lock:
            cached = self._memory.get(url)
        if validate_chained is not None:
            cached = cached if cached is not None and cached.issuer_chain else None
        if cached is not None and cached.fresh_at(now):
            self.stats.memory_hits += 1
            # Report the tier that answered this call (the remembered copy records where it came from).
            view = self._views.get(url)
            if view is None or view[0] is not cached:
                view = (cached, dataclasses.replace(cached, source="memory"))
                self._views[url] = view
            return view[1]
        bundled = self._from_bundle(url, now, expires, collateral_type, validate_chained is not None)
        if bundled is not None and bundled.fresh_at(now):
            self._remember(bundled)
            return bundled
        stored = self._from_store(url)
        if validate_chained is not None and stored is not None and not stored.issuer_chain:
            stored = None
        if stored is not None and stored.fresh_at(now):
            self.stats.store_hits += 1
            self._remember(stored)
            return stored
        try:
            return self.refresh(
                url,
                now=now,
                expires=expires,
                validate=validate,
                collateral_type=collateral_type,
                validate_chained=validate_chained,
            )
        except Unavailable:
            fallback = max(
                (c for c in (cached, bundled, stored) if c is not None),
                key=lambda c: c.fetched_at,
                default=None,
            )
            if fallback is not None and fallback.expires_at is not None and now <= fallback.expires_at + stale_grace:
                self.stats.stale_served += 1
                return dataclasses.replace(fallback, stale=True)
            if fallback is not None and fallback.expires_at is not None:
                self._raise_expired(url, fallback.expires_at, stale_grace)
            raise

    def _raise_expired(self, url: str, expired_at: datetime, grace: timedelta) -> None:
        """A copy exists but is past its validity (and the stale-if-error grace): say so, and when."""
        when = expired_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        allowed = f" + {int(grace.total_seconds())} s stale-if-error" if grace else ""
        if getattr(self.fetcher, "offline", False):
            # Offline, a retry cannot help: the copy at hand is expired, not missing.
            raise COLLATERAL_EXPIRED(f"offline mode: the cached copy of {url} expired at {when}{allowed}")
        raise COLLATERAL_UNAVAILABLE(
            f"no upstream answered for {url} and the cached copy expired at {when}{allowed}", retry_after=30
        )

    def refresh(
        self,
        url: str,
        *,
        now: datetime,
        expires: Callable[[bytes], datetime | None],
        validate: Callable[[bytes], None] | None = None,
        collateral_type: str | None = None,
        validate_chained: Callable[[bytes, bytes | None], None] | None = None,
    ) -> CachedObject:
        """Fetch from the origin, validate, and write through both tiers."""
        self.stats.origin_fetches += 1
        response = self.fetcher.get(url, timeout=self.timeout)
        chain = issuer_chain_from_headers(response.headers)
        if validate_chained is not None:
            validate_chained(response.body, chain)
        elif validate is not None:
            validate(response.body)
        obj = CachedObject(
            url,
            response.body,
            now,
            expires(response.body),
            "origin",
            collateral_type=collateral_type,
            issuer_chain=chain,
        )
        self._remember(obj)
        if self.store is not None:
            try:
                self.store.put(self.key(url), obj.encode())
            except Exception:  # noqa: BLE001 - the request still succeeds; the store is an optimisation
                self.stats.store_errors += 1
        return obj
