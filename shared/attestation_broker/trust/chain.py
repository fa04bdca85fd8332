"""The X.509 path builder every evidence kind uses (RFC 5280 §6), on ``cryptography.x509.verification``.

:func:`verify_path` builds a path from a leaf through supplied intermediates to one of the caller's
pinned anchors with one set of rules: validity of every supplied certificate at the injected time with
the configured clock skew on both ends (CERT_EXPIRED), then path building and signature checks at a time
inside every window, with explicit extension policies instead of the Web PKI defaults (vendor CAs carry
no server/client EKUs): every CA on the path must have basicConstraints ``cA`` and keyUsage
``keyCertSign`` (a CA without keyUsage is refused), path length constraints are enforced by the
library, the path is at most ``max_depth`` certificates deep, and the leaf must not be a CA.
Failures are the caller's typed code (CERT_CHAIN_INVALID by default); nothing untyped escapes.

Verified paths are memoized in one bounded LRU shared by every kind (:data:`PATHS`), keyed by the exact DER
bytes of the leaf, the intermediates and the anchors and by the depth limit: path building and its signature
checks depend on those bytes alone, because the library is asked at a time inside every supplied window. Time
is judged on every call (validity with skew before the lookup, the anchor's window after it); failures are
never memoized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from attestation_broker.errors import CERT_CHAIN_INVALID, CERT_EXPIRED, BrokerError
from attestation_broker.evidence.common import LruMemo

ErrorFactory = Callable[[str], BrokerError]


def _require_ca(policy: verification.Policy, cert: x509.Certificate, value: x509.BasicConstraints | None) -> None:
    if value is None or not value.ca:
        raise ValueError("issuer is not a CA (basicConstraints)")


def _require_cert_sign(policy: verification.Policy, cert: x509.Certificate, value: x509.KeyUsage | None) -> None:
    if value is None or not value.key_cert_sign:
        raise ValueError("issuer may not sign certificates (keyUsage)")


def _leaf_not_ca(policy: verification.Policy, cert: x509.Certificate, value: x509.BasicConstraints | None) -> None:
    if value is not None and value.ca:
        raise ValueError("leaf is a CA certificate")


_ANY = verification.Criticality.AGNOSTIC
CA_POLICY = (
    verification.ExtensionPolicy.permit_all()
    .require_present(x509.BasicConstraints, _ANY, _require_ca)
    .require_present(x509.KeyUsage, _ANY, _require_cert_sign)
)
LEAF_POLICY = verification.ExtensionPolicy.permit_all().may_be_present(x509.BasicConstraints, _ANY, _leaf_not_ca)


# Verified paths, shared by every kind (see the module docstring).
PATHS = LruMemo(1024)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _window(cert: x509.Certificate) -> tuple[datetime, datetime]:
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def verify_path(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    *,
    now: datetime,
    skew: timedelta,
    max_depth: int,
    what: str = "certificate chain",
    error: ErrorFactory = CERT_CHAIN_INVALID,
) -> list[x509.Certificate]:
    """The verified path ``[leaf, ..., anchor]``; raise CERT_EXPIRED or ``error`` (see module docstring)."""
    supplied = [leaf, *intermediates]
    for index, cert in enumerate(supplied):
        not_before, not_after = _window(cert)
        if not not_before - skew <= now <= not_after + skew:
            label = "leaf" if index == 0 else f"intermediate {index}"
            raise CERT_EXPIRED(f"{what}: {label} valid {not_before.isoformat()}..{not_after.isoformat()}")
    # A time inside every supplied window (now, moved by at most the skew): the library has no skew.
    latest_start = max(_window(c)[0] for c in supplied)
    earliest_end = min(_window(c)[1] for c in supplied)
    at = min(max(now, latest_start), earliest_end)

    def build() -> tuple[x509.Certificate, ...]:
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(list(anchors)))
            .time(at)
            .max_chain_depth(max_depth)
            .extension_policies(ca_policy=CA_POLICY, ee_policy=LEAF_POLICY)
        )
        try:
            return tuple(builder.build_client_verifier().verify(leaf, list(intermediates)).chain)
        except (verification.VerificationError, ValueError, TypeError):
            raise error(f"{what} does not verify to the pinned root") from None

    key = (_der(leaf), tuple(_der(c) for c in intermediates), tuple(_der(c) for c in anchors), max_depth)
    path = PATHS.get(key, build)
    anchor = path[-1]
    not_before, not_after = _window(anchor)
    if not not_before - skew <= now <= not_after + skew:
        raise CERT_EXPIRED(f"{what}: root valid {not_before.isoformat()}..{not_after.isoformat()}")
    return list(path)
