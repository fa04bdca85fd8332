"""The X.509 path builder every evidence kind uses (RFC 5280 §6), on ``cryptography.x509.verification``.

:func:`verify_path` builds a path from a leaf through supplied intermediates to one of the caller's
pinned anchors with one set of rules: validity of every supplied certificate at the injected time with
the configured clock skew on both ends (CERT_EXPIRED), then path building and signature checks at a time
inside every window, with explicit extension policies instead of the Web PKI defaults (vendor CAs carry
no server/client EKUs): every CA on the path must have basicConstraints ``cA`` and keyUsage
``keyCertSign`` (a CA without keyUsage is refused), path length constraints are enforced by the
library, the path is at most ``max_depth`` certificates deep (leaf and anchor included, as for the walker
below; cryptography's own ``max_chain_depth`` counts only the intermediates), and the leaf must not be a CA.
Failures are the caller's typed code (CERT_CHAIN_INVALID by default); nothing untyped escapes.

:func:`verify_ordered_path` is the one hand-written walker, for vendor chains the library refuses outright: AMD
signs ARK, ASK/ASVK and VCEK/VLEK with RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48), an algorithm identifier
cryptography's verifier forbids ("Forbidden signature algorithm", cryptography 50) and whose allowed set cannot be
configured from Python; NVIDIA's RIM signing intermediates encode validity dates before 2050 as GeneralizedTime
(RFC 5280 §4.1.2.5 requires UTCTime), which the verifier refuses ("validity dates between 1950 and 2049 must be
UtcTime") with no option to relax it. It applies the same rules as the policies above to a path the caller has
already ordered (leaf first, pinned anchor last): issuer names chain, every signature verifies, every CA has
basicConstraints cA and keyUsage keyCertSign, path length constraints hold, the depth is bounded and the leaf is
not a CA. Validity for both is :func:`require_valid` (the configured clock skew on both ends, compared as differences
of dates so that certificates ending at 9999-12-31, as NVIDIA's device certificates do, never overflow).

Verified paths are memoized in one bounded LRU shared by every kind (:data:`PATHS`), keyed by the certificate
objects of the leaf, the intermediates and the anchors (by identity, see :class:`Same`) and by the depth limit: path
building and its signature checks depend on those certificates' bytes alone, because the library is asked at a time
inside every supplied window. Time is judged on every call (validity with skew before the lookup, the anchor's window
after it); failures are never memoized. Identity rather than re-encoded DER because re-encoding three certificates
cost more (about 55 µs) than the rest of a warm SNP verification besides its signature; certificates are parsed
through the memo in :mod:`attestation_broker.trust.x509`, so the same bytes give the same object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
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


class Same:
    """A memo-key part naming one object by identity. The key holds the object, so while the entry lives no other
    object can have its ``id``: equal keys mean the very same (immutable) certificate, hence the same bytes. A
    certificate re-parsed into a new object only misses (and is verified again); it is never confused."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Same) and other.obj is self.obj


def _window(cert: x509.Certificate) -> tuple[datetime, datetime]:
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def _inside(cert: x509.Certificate, now: datetime, skew: timedelta) -> bool:
    not_before, not_after = _window(cert)
    return not_before - now <= skew and now - not_after <= skew  # differences: no date arithmetic overflows


def require_valid(certs: Sequence[x509.Certificate], now: datetime, skew: timedelta, what: str) -> None:
    """CERT_EXPIRED unless every certificate of a path (leaf first, anchor last) is valid at ``now`` within
    ``skew`` on both ends."""
    for index, cert in enumerate(certs):
        if not _inside(cert, now, skew):
            not_before, not_after = _window(cert)
            last = index == len(certs) - 1 and index > 0
            label = "leaf" if index == 0 else ("root" if last else f"intermediate {index}")
            raise CERT_EXPIRED(f"{what}: {label} valid {not_before.isoformat()}..{not_after.isoformat()}")


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
    windows = [_window(leaf), *(_window(c) for c in intermediates)]
    for index, (not_before, not_after) in enumerate(windows):
        if not (not_before - now <= skew and now - not_after <= skew):  # as _inside, on the windows read once
            label = "leaf" if index == 0 else f"intermediate {index}"
            raise CERT_EXPIRED(f"{what}: {label} valid {not_before.isoformat()}..{not_after.isoformat()}")

    def build() -> tuple[x509.Certificate, ...]:
        # A time inside every supplied window (now, moved by at most the skew): the library has no skew. Only a
        # memo miss builds, so a hit never computes it.
        latest_start = max(start for start, _end in windows)
        earliest_end = min(end for _start, end in windows)
        at = min(max(now, latest_start), earliest_end)
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(list(anchors)))
            .time(at)
            .max_chain_depth(max(0, max_depth - 2))  # the library counts intermediates only
            .extension_policies(ca_policy=CA_POLICY, ee_policy=LEAF_POLICY)
        )
        try:
            return tuple(builder.build_client_verifier().verify(leaf, list(intermediates)).chain)
        except (verification.VerificationError, ValueError, TypeError):
            raise error(f"{what} does not verify to the pinned root") from None

    key = (Same(leaf), tuple(Same(c) for c in intermediates), tuple(Same(c) for c in anchors), max_depth)
    path = PATHS.get(key, build)
    anchor = path[-1]
    if not _inside(anchor, now, skew):
        not_before, not_after = _window(anchor)
        raise CERT_EXPIRED(f"{what}: root valid {not_before.isoformat()}..{not_after.isoformat()}")
    return list(path)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _walk(path: Sequence[x509.Certificate], max_depth: int, what: str, error: ErrorFactory) -> None:
    if not 2 <= len(path) <= max_depth:
        raise error(f"{what} has {len(path)} certificates (at most {max_depth})")
    leaf_constraints = _extension(path[0], x509.BasicConstraints)
    if isinstance(leaf_constraints, x509.BasicConstraints) and leaf_constraints.ca:
        raise error(f"{what}: leaf is a CA certificate")
    for index in range(1, len(path)):
        child, issuer = path[index - 1], path[index]
        constraints = _extension(issuer, x509.BasicConstraints)
        usage = _extension(issuer, x509.KeyUsage)
        if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
            raise error(f"{what}: issuer {index} is not a CA (basicConstraints)")
        if not isinstance(usage, x509.KeyUsage) or not usage.key_cert_sign:
            raise error(f"{what}: issuer {index} may not sign certificates (keyUsage)")
        # pathLenConstraint: how many CA certificates may follow this one below it (the leaf excluded).
        if constraints.path_length is not None and index - 1 > constraints.path_length:
            raise error(f"{what}: issuer {index} pathLenConstraint exceeded")
        try:
            child.verify_directly_issued_by(issuer)  # issuer name and signature (RSA-PSS included)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            raise error(f"{what}: certificate {index - 1} is not signed by issuer {index}") from None


def verify_ordered_path(
    path: Sequence[x509.Certificate],
    *,
    max_depth: int,
    what: str = "certificate chain",
    error: ErrorFactory = CERT_CHAIN_INVALID,
) -> None:
    """Walk ``[leaf, ..., pinned anchor]`` (already ordered) with the rules of the module docstring; raise
    ``error`` on any failure. Time-independent (the caller applies :func:`require_valid`); memoized in
    :data:`PATHS` by the certificates (:class:`Same`). The anchor's self-signature is not checked: it is pinned."""
    key = ("ordered", tuple(Same(c) for c in path), max_depth)
    PATHS.get(key, lambda: _walk(path, max_depth, what, error))
