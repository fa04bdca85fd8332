"""Google vTPM AK certificates: chain to the pinned Google EK/AK roots and GCE instance identity.

- Chain (RFC 5280 §6, reduced to what Google's two hierarchies need): AK cert ← intermediate ← pinned
  root (``tpm_ek_root_1.cer`` 2018 hierarchy, ``gcp_ek_ak_ca_root.crt`` 2022 hierarchy). Each link is a
  signature check with ``verify_directly_issued_by``; every cert must be valid at ``now``; issuers must
  be CAs with keyCertSign; the AK cert must be an end-entity cert with digitalSignature.
- Intermediates come from the attestation (``intermediate_certs``), from extras, or, when neither has
  the issuer, from the AK cert's AIA caIssuers URL through the collateral cache — only for Google's
  published certificate hosts, and the fetched cert is verified like any other.
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
from datetime import datetime
from functools import cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from attestation_broker.errors import CERT_CHAIN_INVALID, CERT_EXPIRED
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


# Whether ``child`` is signed by ``issuer``: a pure function of the two certificates, and an AK chain is the same
# on every attestation of a VM (RSA-4096 verifications were a third of a gcp-vtpm verification). Validity at
# ``now`` is still checked at every use.
_SIGNED: dict[tuple[x509.Certificate, x509.Certificate], bool] = {}
_SIGNED_MAX = 1024


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = (child, issuer)
    known = _SIGNED.get(key)
    if known is None:
        known = _verify_signed_by(child, issuer)
        if len(_SIGNED) >= _SIGNED_MAX:
            _SIGNED.clear()
        _SIGNED[key] = known
    return known


def _verify_signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    with warnings.catch_warnings():
        # Google's 2018 CA names carry attributes longer than X.520 upper bounds.
        warnings.simplefilter("ignore", UserWarning)
        try:
            child.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return False
    return True


def _names_issuer(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return child.issuer == issuer.subject


def _check_time(cert: x509.Certificate, now: datetime, what: str) -> None:
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise CERT_EXPIRED(f"{what} is outside its validity period")


def _check_ca(cert: x509.Certificate, what: str) -> None:
    try:
        bc = cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        raise GCP_VTPM_AK_CERT_USAGE(f"{what} lacks basicConstraints or keyUsage") from None
    if not isinstance(bc, x509.BasicConstraints) or not bc.ca:
        raise GCP_VTPM_AK_CERT_USAGE(f"{what} is not a CA")
    if not isinstance(ku, x509.KeyUsage) or not ku.key_cert_sign:
        raise GCP_VTPM_AK_CERT_USAGE(f"{what} may not sign certificates")


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
        host = urllib.parse.urlsplit(url).hostname or ""
        google = host in _AIA_HOSTS or (host.endswith(_AIA_HOST_SUFFIX) and host.startswith(_AIA_HOST_PREFIX))
        if google and url.startswith(("http://", "https://")):
            urls.append(url)
    return urls


def verify_ak_cert(
    ak_cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    *,
    now: datetime,
    fetch_issuer: Callable[[str], tuple[bytes, dict[str, object]]] | None = None,
    roots: Sequence[tuple[str, x509.Certificate]] | None = None,
) -> VerifiedAkCert:
    """Build and verify AK cert → … → pinned Google root at ``now``; raise on any failure.

    ``fetch_issuer(url)`` returns (DER/PEM bytes, collateral record) for an AIA URL; it is only called
    when no supplied certificate or pinned root signed the current certificate. ``roots`` is a test seam
    (a generated Google-like CA); None, the product behaviour, means the pinned Google roots.
    """
    anchors = tuple(roots) if roots is not None else google_roots()
    _check_leaf(ak_cert)
    _check_time(ak_cert, now, "AK certificate")
    chain = [ak_cert]
    fetched: list[dict[str, object]] = []
    pool = list(intermediates)
    current = ak_cert
    for _ in range(MAX_CHAIN):
        for name, root in anchors:
            if _signed_by(current, root):
                _check_time(root, now, "Google root")
                return VerifiedAkCert(ak_cert, (*chain, root), name, parse_identity(ak_cert), tuple(fetched))
        issuer = next((c for c in pool if c not in chain and _signed_by(current, c)), None)
        if issuer is None and any(_names_issuer(current, c) for c in [*pool, *(r for _, r in anchors)]):
            # The named issuer is at hand but did not sign: a forged or corrupted certificate, not a gap.
            raise CERT_CHAIN_INVALID("AK chain signature does not verify")
        if issuer is None and fetch_issuer is not None:
            for url in aia_issuer_urls(current):
                body, record = fetch_issuer(url)  # outages propagate as COLLATERAL_UNAVAILABLE (503)
                candidate = load_cert(body)
                if _signed_by(current, candidate):
                    issuer = candidate
                    fetched.append(record)
                    break
        if issuer is None:
            raise CERT_CHAIN_INVALID("AK certificate does not chain to a pinned Google EK/AK root")
        _check_ca(issuer, "AK chain intermediate")
        _check_time(issuer, now, "AK chain intermediate")
        chain.append(issuer)
        current = issuer
    raise CERT_CHAIN_INVALID("AK certificate chain is too long")


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
