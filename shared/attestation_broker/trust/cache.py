"""Tiered collateral cache: memory → shared store → vendor origin (DESIGN.md §3 "Collateral").

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
import os
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from attestation_broker.errors import Unavailable
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
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@dataclass(frozen=True)
class CachedObject:
    url: str
    body: bytes
    fetched_at: datetime
    expires_at: datetime | None  # None: immutable (e.g. a VCEK for one chip and TCB)
    source: str  # "memory" | "store" | "origin"
    stale: bool = False
    # Collateral type tag ("crl", "tcb_info", ...) recorded with the object so the scheduled refresher
    # (attestation_broker.trust.refresh) knows how to re-validate it; None: untyped, never refreshed in the background.
    collateral_type: str | None = None

    def fresh_at(self, now: datetime) -> bool:
        return self.expires_at is None or now <= self.expires_at

    def encode(self) -> bytes:
        meta = json.dumps(
            {
                "url": self.url,
                "fetched_at": self.fetched_at.isoformat(),
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "type": self.collateral_type,
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
            return cls(
                url=str(meta["url"]),
                body=data[4 + n :],
                fetched_at=datetime.fromisoformat(meta["fetched_at"]),
                expires_at=datetime.fromisoformat(expires) if expires else None,
                source=source,
                collateral_type=str(tag) if tag is not None else None,
            )
        except (struct.error, ValueError, KeyError, TypeError):
            return None  # a damaged cache entry is a miss, never an error


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
    ) -> None:
        self.fetcher = fetcher
        self.store = store
        self.timeout = timeout
        self._memory: OrderedDict[str, CachedObject] = OrderedDict()
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
                self._memory.popitem(last=False)

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

    def get(
        self,
        url: str,
        *,
        now: datetime,
        expires: Callable[[bytes], datetime | None],
        validate: Callable[[bytes], None] | None = None,
        stale_grace: timedelta = timedelta(0),
        collateral_type: str | None = None,
    ) -> CachedObject:
        """Return collateral for ``url`` fresh at ``now``; see the module docstring for the tiers.

        ``expires`` derives the end of validity from the bytes (e.g. a CRL's nextUpdate) and returns
        None for immutable objects. ``validate`` raises (typed error) when fetched bytes are unusable.
        ``collateral_type`` tags what is stored so the background refresher can re-validate it.
        """
        self.seen.add(url)
        with self._lock:
            cached = self._memory.get(url)
        if cached is not None and cached.fresh_at(now):
            self.stats.memory_hits += 1
            # Report the tier that answered this call (the remembered copy records where it came from).
            return dataclasses.replace(cached, source="memory")
        stored = self._from_store(url)
        if stored is not None and stored.fresh_at(now):
            self.stats.store_hits += 1
            self._remember(stored)
            return stored
        try:
            return self.refresh(url, now=now, expires=expires, validate=validate, collateral_type=collateral_type)
        except Unavailable:
            fallback = max(
                (c for c in (cached, stored) if c is not None),
                key=lambda c: c.fetched_at,
                default=None,
            )
            if fallback is not None and fallback.expires_at is not None and now <= fallback.expires_at + stale_grace:
                self.stats.stale_served += 1
                return dataclasses.replace(fallback, stale=True)
            raise

    def refresh(
        self,
        url: str,
        *,
        now: datetime,
        expires: Callable[[bytes], datetime | None],
        validate: Callable[[bytes], None] | None = None,
        collateral_type: str | None = None,
    ) -> CachedObject:
        """Fetch from the origin, validate, and write through both tiers."""
        self.stats.origin_fetches += 1
        response = self.fetcher.get(url, timeout=self.timeout)
        if validate is not None:
            validate(response.body)
        obj = CachedObject(url, response.body, now, expires(response.body), "origin", collateral_type=collateral_type)
        self._remember(obj)
        if self.store is not None:
            try:
                self.store.put(self.key(url), obj.encode())
            except Exception:  # noqa: BLE001 - the request still succeeds; the store is an optimisation
                self.stats.store_errors += 1
        return obj
