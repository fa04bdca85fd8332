"""Google vTPM AK certificates: chain to the pinned Google EK/AK roots and GCE instance identity.

- Chain (RFC 5280 §6): AK cert ← intermediate ← pinned root (``tpm_ek_root_1.cer`` 2018 hierarchy,
  ``gcp_ek_ak_ca_root.crt`` 2022 hierarchy), built and verified by the shared path builder
  (:func:`attestation_broker.trust.chain.verify_path`: signatures, validity at ``now`` with the clock skew,
  CAs with basicConstraints cA and keyCertSign, path length, leaf not a CA; Google's real chains in
  tests/vectors/gcp satisfy it unrelaxed). The AK profile on top: the AK cert must carry keyUsage
  digitalSignature (an EK certificate is refused as GCP_VTPM_AK_CERT_USAGE).
- Intermediates come from the attestation (``intermediate_certs``), from extras, or, when neither names
  the issuer, from the AK cert's AIA caIssuers URL through the collateral cache — only for Google's
  published certificate hosts; a fetched cert is only a candidate for the path builder, trusted like any
  other supplied certificate, i.e. not at all until the path verifies.
- Identity: extension 1.3.6.1.4.1.11129.2.1.21 (go-tpm-tools server/verify.go ``gceInstanceInfo``):
  SEQUENCE { zone UTF8String, project_number INTEGER, project_id UTF8String, instance_id INTEGER,
  instance_name UTF8String, [0] EXPLICIT SEQUENCE { [0] EXPLICIT INTEGER security_version,
  [1] EXPLICIT BOOLEAN is_production, [n] EXPLICIT BOOLEAN ... } OPTIONAL }.
"""

from __future__ import annotations

import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from attestation_broker.errors import CERT_CHAIN_INVALID, BrokerError
from attestation_broker.evidence.common import LruMemo
from attestation_broker.trust.chain import Same, verify_path
from attestation_broker.trust.roots import root_certificates
from attestation_broker.trust.x509 import load_certificate

from . import der
from .errors import (
    GCP_VTPM_AK_CERT_MALFORMED,
    GCP_VTPM_AK_CERT_USAGE,
    GCP_VTPM_INSTANCE_INFO_MALFORMED,
)

GCE_INSTANCE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.21")
GOOGLE_ROOT_FILES = ("tpm_ek_root_1.cer", "gcp_ek_ak_ca_root.crt")
MAX_CHAIN = 4
# Hosts Google publishes AK/EK CA certificates on (AIA caIssuers of the real certs). Anything else
# named in an AIA extension is ignored: the evidence must not steer the broker's fetches elsewhere.
_AIA_HOSTS = ("pki.goog",)
_AIA_HOST_SUFFIX = ".storage.googleapis.com"
_AIA_HOST_PREFIX = "privateca-content-"


# Facts of certificates that depend on their bytes alone (the AK profile check, the walk by names through supplied
# certificates, the decoded GCE identity), by certificate identity as trust.chain.PATHS keys verified paths: the
# certificates come from the parse memo of trust.x509, so the same bytes give the same objects. Failures are never
# memoized; validity at ``now`` is judged by verify_path on every call.
_FACTS = LruMemo(1024)


@dataclass(frozen=True)
class SecurityProperties:
    security_version: int | None = None
    is_production: bool | None = None
    # Context tags beyond [1] are not documented publicly; kept by tag number.
    other: tuple[tuple[int, bool | int], ...] = ()


@dataclass(frozen=True)
class GceIdentity:
    zone: str
    project_number: int
    project_id: str
    instance_id: int
    instance_name: str
    security: SecurityProperties | None = None


@dataclass(frozen=True)
class VerifiedAkCert:
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, pinned root last
    root: str  # file name of the pinned root
    identity: GceIdentity | None
    fetched: tuple[dict[str, object], ...] = field(default=())  # collateral records of AIA fetches


@cache
def google_roots() -> tuple[tuple[str, x509.Certificate], ...]:
    """The pinned roots (SHA-256-checked against attestation_broker/trust/roots/google/MANIFEST.json)."""
    return tuple((name, cert) for name in GOOGLE_ROOT_FILES for cert in root_certificates("google", name))


def load_cert(data: bytes) -> x509.Certificate:
    return load_certificate(data, GCP_VTPM_AK_CERT_MALFORMED, "certificate")


def _names_issuer(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return child.issuer == issuer.subject


def _check_leaf(cert: x509.Certificate) -> None:
    try:
        bc = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        if isinstance(bc, x509.BasicConstraints) and bc.ca:
            raise GCP_VTPM_AK_CERT_USAGE("AK certificate is a CA certificate")
    except x509.ExtensionNotFound:
        pass
    try:
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        raise GCP_VTPM_AK_CERT_USAGE("AK certificate has no keyUsage") from None
    if not isinstance(ku, x509.KeyUsage) or not ku.digital_signature:
        raise GCP_VTPM_AK_CERT_USAGE("AK certificate key may not sign")


def aia_issuer_urls(cert: x509.Certificate) -> list[str]:
    """caIssuers URLs of ``cert`` that point at Google's certificate hosts."""
    try:
        aia = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    except x509.ExtensionNotFound:
        return []
    urls: list[str] = []
    for desc in aia if isinstance(aia, x509.AuthorityInformationAccess) else []:
        if desc.access_method != AuthorityInformationAccessOID.CA_ISSUERS:
            continue
        if not isinstance(desc.access_location, x509.UniformResourceIdentifier):
            continue
        url = desc.access_location.value
        try:
            host = urllib.parse.urlsplit(url).hostname or ""
        except ValueError:  # e.g. an unbalanced "[" (RFC 3986 IP-literal): not a location we would fetch from
            continue
        google = host in _AIA_HOSTS or (host.endswith(_AIA_HOST_SUFFIX) and host.startswith(_AIA_HOST_PREFIX))
        if google and url.startswith(("http://", "https://")):
            urls.append(url)
    return urls


def _discover(
    ak_cert: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    fetch_issuer: Callable[[str], tuple[bytes, dict[str, object]]] | None,
) -> tuple[list[x509.Certificate], list[dict[str, object]]]:
    """Issuers missing from ``pool`` fetched through AIA (by name only: nothing is trusted until the path
    builder has verified the whole path). Returns the fetched certificates and their collateral records."""
    fetched: list[x509.Certificate] = []
    records: list[dict[str, object]] = []
    current = ak_cert
    for _ in range(MAX_CHAIN):
        if any(_names_issuer(current, root) for root in anchors):
            return fetched, records
        issuer = next((c for c in [*pool, *fetched] if c != current and _names_issuer(current, c)), None)
        if issuer is None and fetch_issuer is not None:
            for url in aia_issuer_urls(current):
                body, record = fetch_issuer(url)  # outages propagate as COLLATERAL_UNAVAILABLE (503)
                candidate = load_cert(body)
                if _names_issuer(current, candidate):
                    issuer = candidate
                    fetched.append(candidate)
                    records.append(record)
                    break
        if issuer is None:
            raise CERT_CHAIN_INVALID("AK certificate does not chain to a pinned Google EK/AK root")
        current = issuer
    raise CERT_CHAIN_INVALID("AK certificate chain is too long")


def verify_ak_cert(
    ak_cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    *,
    now: datetime,
    skew: timedelta = timedelta(0),
    fetch_issuer: Callable[[str], tuple[bytes, dict[str, object]]] | None = None,
    roots: Sequence[tuple[str, x509.Certificate]] | None = None,
) -> VerifiedAkCert:
    """Build and verify AK cert → … → pinned Google root at ``now`` (± ``skew``); raise on any failure.

    ``fetch_issuer(url)`` returns (DER/PEM bytes, collateral record) for an AIA URL; it is only called
    when no supplied certificate or pinned root is named as the current certificate's issuer. ``roots`` is a
    test seam (a generated Google-like CA); None, the product behaviour, means the pinned Google roots.
    """
    anchors = tuple(roots) if roots is not None else google_roots()
    anchor_certs = [cert for _, cert in anchors]
    leaf = Same(ak_cert)
    _FACTS.get(("leaf", leaf), lambda: _check_leaf(ak_cert))
    # When the supplied certificates already name every issuer up to an anchor, the walk needs no fetch and is a pure
    # function of those certificates: memoized by them. Otherwise it runs in full (fetching through the cache).
    supplied = ("names", leaf, tuple(Same(c) for c in intermediates), tuple(Same(c) for c in anchor_certs))
    try:
        _FACTS.get(supplied, lambda: _discover(ak_cert, intermediates, anchor_certs, None))
        fetched: list[x509.Certificate] = []
        records: list[dict[str, object]] = []
    except BrokerError:
        fetched, records = _discover(ak_cert, intermediates, anchor_certs, fetch_issuer)
    with warnings.catch_warnings():
        # Google's 2018 CA names carry attributes longer than X.520 upper bounds.
        warnings.simplefilter("ignore", UserWarning)
        path = verify_path(
            ak_cert,
            [*intermediates, *fetched],
            anchor_certs,
            now=now,
            skew=skew,
            max_depth=MAX_CHAIN,
            what="AK certificate chain",
        )
    # The path ends in one of the anchor objects given to the builder: found by identity (comparing two equal
    # certificates re-encodes them, about as costly as the rest of this function); equality only as the fallback.
    anchor = path[-1]
    root = next((name for name, cert in anchors if cert is anchor), None)
    if root is None:
        root = next(name for name, cert in anchors if cert == anchor)
    identity = _FACTS.get(("identity", leaf), lambda: parse_identity(ak_cert))
    return VerifiedAkCert(ak_cert, tuple(path), root, identity, tuple(records))


def public_key_der(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_identity(cert: x509.Certificate) -> GceIdentity | None:
    """The GCE instance identity extension of ``cert`` (None when absent)."""
    try:
        ext = cert.extensions.get_extension_for_oid(GCE_INSTANCE_OID).value
    except x509.ExtensionNotFound:
        return None
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    try:
        return decode_identity(raw)
    except der.DerError as exc:
        raise GCP_VTPM_INSTANCE_INFO_MALFORMED(f"instance identity: {exc}") from None


def decode_identity(raw: bytes) -> GceIdentity:
    seq = der.read_one(raw)
    if seq.tag != 0x30:
        raise der.DerError("expected SEQUENCE")
    items = der.read_all(seq.value)
    if len(items) not in (5, 6):
        raise der.DerError("unexpected element count")
    zone, project_number, project_id, instance_id, instance_name = (
        der.utf8(items[0]),
        der.integer(items[1]),
        der.utf8(items[2]),
        der.integer(items[3]),
        der.utf8(items[4]),
    )
    if project_number < 0 or instance_id < 0:
        raise der.DerError("negative identifier")
    security = None
    if len(items) == 6:
        if items[5].tag != 0xA0:
            raise der.DerError("expected [0] security properties")
        inner = der.read_one(items[5].value)
        if inner.tag != 0x30:
            raise der.DerError("expected SEQUENCE of security properties")
        version: int | None = None
        production: bool | None = None
        other: list[tuple[int, bool | int]] = []
        last = -1
        for prop in der.read_all(inner.value):
            number = prop.tag & 0x1F
            if prop.tag & 0xE0 != 0xA0 or number <= last:
                raise der.DerError("bad security property tag")
            last = number
            value = der.read_one(prop.value)
            if number == 0:
                version = der.integer(value)
            elif number == 1:
                production = der.boolean(value)
            else:
                other.append((number, der.boolean(value) if value.tag == 0x01 else der.integer(value)))
        security = SecurityProperties(version, production, tuple(other))
    return GceIdentity(zone, project_number, project_id, instance_id, instance_name, security)
