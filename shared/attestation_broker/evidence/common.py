"""Helpers shared by the hardware-evidence verifiers (snp, tdx, nitro, tpm): one implementation where
their logic is the same.

* :func:`require_valid_at`: an X.509 validity period (RFC 5280 §4.1.2.5) at a given time, with the
  allowed clock skew on both ends.
* :func:`load_der_certificate`: DER X.509 parsing memoized by the exact bytes.
* :func:`ecdsa_der_signature`: a raw ECDSA ``r ‖ s`` signature (fixed-width big-endian, IEEE P1363 /
  RFC 9053 §2.1) in the DER form ``cryptography`` verifies.
* :class:`LruMemo`: a bounded, thread-safe LRU for the results of pure verification functions
  (signatures, chains, CRLs); failures are never memoized, time-dependent checks stay with the caller.

Policy is not parsed here or anywhere in a kind: see :mod:`attestation_broker.policy`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import TypeVar, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation_broker.errors import CERT_EXPIRED
from attestation_broker.trust.x509 import parse_der_certificate

T = TypeVar("T")


# --- certificates -----------------------------------------------------------------------------------


def require_valid_at(cert: x509.Certificate, at: datetime, detail: str, *, skew: timedelta = timedelta(0)) -> None:
    """CERT_EXPIRED (with ``detail``) unless notBefore - skew <= at <= notAfter + skew."""
    if not cert.not_valid_before_utc - skew <= at <= cert.not_valid_after_utc + skew:
        raise CERT_EXPIRED(detail)


def load_der_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate with every field decoded (memoized by the exact bytes); raises ValueError
    when it is not one (see :mod:`attestation_broker.trust.x509`)."""
    return parse_der_certificate(der)


def ecdsa_der_signature(raw: bytes, coordinate_size: int) -> bytes:
    """``raw`` is r ‖ s, r in the first ``coordinate_size`` bytes (callers check the total length)."""
    r = int.from_bytes(raw[:coordinate_size], "big")
    s = int.from_bytes(raw[coordinate_size:], "big")
    return encode_dss_signature(r, s)


# --- memoization ------------------------------------------------------------------------------------


class LruMemo:
    """A bounded, thread-safe LRU for results of pure functions, keyed by what fully determines them.

    ``hits`` counts answers served from memory, ``misses`` results computed and stored.
    """

    def __init__(self, size: int) -> None:
        self._data: OrderedDict[Hashable, object] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T], *, valid: Callable[[T], bool] | None = None) -> T:
        """The value stored under ``key``, else ``compute()`` stored. ``valid``, when given, must accept a stored value
        for it to be served; a refused one is computed again and replaced (a key that does not determine the result
        alone, completed by a comparison on the stored value)."""
        with self._lock:
            if key in self._data:
                stored = cast(T, self._data[key])
                if valid is None or valid(stored):
                    self._data.move_to_end(key)
                    self.hits += 1
                    return stored
        value = compute()  # raises on failure; failures are never memoized
        with self._lock:
            self.misses += 1
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Forget every entry (benchmarks measure the cold path with it)."""
        with self._lock:
            self._data.clear()
