"""Confidential Space PKI tokens: the x5c chain to the pinned Confidential Space Root CA (RFC 7515 §4.1.6,
RFC 5280 §6.1 reduced to what a three-certificate private-CA chain needs).

The header's x5c is [leaf, "Confidential Space Intermediate CA", (optionally) "Confidential Space Root CA"].
Each certificate must be directly issued by the next (name + signature), every issuer must be a CA with
keyCertSign, the leaf must not be a CA, all must be valid at ``now``, and the top of the chain must either BE
the pinned root (byte-identical) or be issued by it. The token signature is then checked with the leaf key.
CRLs of the private CA are not consulted yet (leaves live two months); signature checks of a chain are
memoized by its exact x5c strings, validity dates are checked on every use.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from attestation_broker.errors import CERT_CHAIN_INVALID, CERT_EXPIRED
from attestation_broker.evidence.jose.keys import load_x5c_entry
from attestation_broker.trust.roots import root_certificates

ROOT_VENDOR = "google/confidential_space"
ROOT_FILE = "confidential-space-root-ca.pem"
MAX_CHAIN = 5


@cache
def pinned_roots() -> tuple[x509.Certificate, ...]:
    """The pinned Confidential Space root(s), checked against the folder's MANIFEST.json SHA-256."""
    return root_certificates(ROOT_VENDOR, ROOT_FILE)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not bc.ca:
        return False
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return bool(ku.key_cert_sign)


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@dataclass(frozen=True)
class _Chain:
    """A chain whose names, CA flags and signatures verified; validity windows are checked per use."""

    key: rsa.RSAPublicKey
    windows: tuple[tuple[str, datetime, datetime], ...]
    record: Mapping[str, Any]


# Chains verified against the pinned roots, keyed by the exact x5c strings: the same bytes give the same
# signature results, so only the time checks run again (PKI tokens reuse one leaf for weeks).
_memo: OrderedDict[tuple[str, ...], _Chain] = OrderedDict()
_memo_lock = threading.Lock()
_MEMO_MAX = 128


def _verify_chain(x5c: list[Any], anchors: tuple[x509.Certificate, ...]) -> _Chain:
    certs = [load_x5c_entry(entry) for entry in x5c]
    leaf = certs[0]
    if _is_ca(leaf):
        raise CERT_CHAIN_INVALID("x5c leaf is a CA certificate")
    for index, (child, parent) in enumerate(itertools.pairwise(certs)):
        if not _is_ca(parent):
            raise CERT_CHAIN_INVALID(f"x5c[{index + 1}] is not a CA certificate")
        if not _issued_by(child, parent):
            raise CERT_CHAIN_INVALID(f"x5c[{index}] is not signed by x5c[{index + 1}]")
    top = certs[-1]
    anchor_der = {root.public_bytes(Encoding.DER) for root in anchors}
    if top.public_bytes(Encoding.DER) in anchor_der:
        anchor = top
    else:
        matches = [root for root in anchors if _issued_by(top, root)]
        if not matches:
            raise CERT_CHAIN_INVALID("x5c does not chain to the pinned Confidential Space root")
        anchor = matches[0]
        if not _is_ca(top):
            raise CERT_CHAIN_INVALID("top x5c certificate is not a CA certificate")
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise CERT_CHAIN_INVALID("x5c leaf key is not RSA-2048 or larger")
    windows = [(f"x5c[{i}]", c.not_valid_before_utc, c.not_valid_after_utc) for i, c in enumerate(certs)]
    windows.append(("root", anchor.not_valid_before_utc, anchor.not_valid_after_utc))
    record = {
        "type": "x5c",
        "url": None,
        "subject": _cn(leaf),
        "issuer": _cn(certs[1]) if len(certs) > 1 else _cn(anchor),
        "root": f"{ROOT_VENDOR}/{ROOT_FILE}",
        "issued": leaf.not_valid_before_utc.isoformat(),
        "next_update": leaf.not_valid_after_utc.isoformat(),
        "source": "evidence",
        "stale": False,
    }
    return _Chain(key, tuple(windows), record)


def verify_x5c(
    x5c: object, now: datetime, skew_seconds: int, roots: tuple[x509.Certificate, ...] | None = None
) -> tuple[rsa.RSAPublicKey, dict[str, Any]]:
    """Verify the x5c chain to the pinned root (or ``roots``, tests only); return the leaf key and a record."""
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN:
        raise CERT_CHAIN_INVALID(f"x5c must be a list of 1..{MAX_CHAIN} certificates")
    if roots is not None:
        chain = _verify_chain(x5c, roots)
    else:
        memo_key = tuple(str(entry) for entry in x5c) if all(isinstance(e, str) for e in x5c) else None
        with _memo_lock:
            cached = _memo.get(memo_key) if memo_key is not None else None
        if cached is None:
            chain = _verify_chain(x5c, pinned_roots())
            if memo_key is not None:
                with _memo_lock:
                    _memo[memo_key] = chain
                    while len(_memo) > _MEMO_MAX:
                        _memo.popitem(last=False)
        else:
            chain = cached
    skew = timedelta(seconds=skew_seconds)
    for label, not_before, not_after in chain.windows:
        if now + skew < not_before or now - skew > not_after:
            raise CERT_EXPIRED(f"{label} certificate valid {not_before.isoformat()}..{not_after.isoformat()}")
    return chain.key, dict(chain.record)
