"""Verify a parsed Nitro attestation document: certificate chain, COSE signature, nonce, freshness.

Implements the AWS Nitro Enclaves "Verifying the root of trust" §"Certificates validity" and
§"COSE signature validation", and RFC 9052 §4.4 / RFC 9053 §2.1 (ES384: ECDSA P-384 with SHA-384,
signature r ‖ s of 48 bytes each). Order: chain (root pin, every edge, validity at the document
time and at ``now``) → signature with the leaf key → nonce binding. Freshness against policy is a
separate call.

Chain: ``cabundle`` is root first; cabundle[0] must be byte-identical to the pinned AWS root, each
next certificate is issued by the previous one, the document ``certificate`` by the last. Every
issuer is a CA with keyCertSign and a sufficient pathLenConstraint, every signature ECDSA P-384 /
SHA-384, no unknown critical extension. Edge checks depend on the DER bytes alone, so verified
edges are memoized by exact (issuer DER, subject DER, leaf?); validity windows depend on time and are
checked on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import SignatureAlgorithmOID

from attestation_broker.binding import ExpectedBinding, require_equal
from attestation_broker.errors import CERT_CHAIN_INVALID
from attestation_broker.evidence.common import LruMemo, ecdsa_der_signature, require_valid_at
from attestation_broker.evidence.common import load_der_certificate as load_certificate

from .abi import AttestationDocument, CoseSign1, ParsedDocument
from .errors import NITRO_DOCUMENT_FROM_FUTURE, NITRO_SIGNATURE_INVALID
from .trust import TrustAnchor

_P384_COORD = 48


@dataclass(frozen=True)
class VerifiedChain:
    root: TrustAnchor
    intermediates: tuple[x509.Certificate, ...]  # cabundle[1:], root side first
    leaf: x509.Certificate


@dataclass(frozen=True)
class VerifiedDocument:
    document: AttestationDocument
    chain: VerifiedChain
    nonce_checked: bool


def _require_p384(cert: x509.Certificate, role: str) -> None:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise CERT_CHAIN_INVALID(f"{role} key is not ECDSA P-384")


def _no_unknown_critical(cert: x509.Certificate, role: str) -> None:
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise CERT_CHAIN_INVALID(f"{role} has an unrecognized critical extension")


def _check_edge(issuer: x509.Certificate, subject: x509.Certificate, role: str) -> None:
    """Everything about one issuer → subject link that depends only on the two certificates."""
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        raise CERT_CHAIN_INVALID(f"issuer of {role} lacks basicConstraints or keyUsage") from None
    if not constraints.ca or not usage.key_cert_sign:
        raise CERT_CHAIN_INVALID(f"issuer of {role} is not a certificate authority")
    _require_p384(issuer, f"issuer of {role}")
    _no_unknown_critical(subject, role)
    if subject.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
        raise CERT_CHAIN_INVALID(f"{role} is not signed with ECDSA-SHA384")
    try:
        subject.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise CERT_CHAIN_INVALID(f"{role} is not issued by the previous certificate") from None


def _check_leaf(leaf: x509.Certificate) -> None:
    _require_p384(leaf, "document certificate")
    try:
        constraints: x509.BasicConstraints | None = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        raise CERT_CHAIN_INVALID("document certificate is a CA")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise CERT_CHAIN_INVALID("document certificate may not sign")


def _check_edge_ders(issuer_der: bytes, subject_der: bytes, role: str) -> None:
    issuer, subject = load_certificate(issuer_der), load_certificate(subject_der)
    _check_edge(issuer, subject, role)
    if role == "document certificate":
        _check_leaf(subject)


def _path_length(cert: x509.Certificate) -> int | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


class ChainVerifier:
    """Verifies cabundle + certificate to one trust anchor, memoizing verified edges by exact DER bytes."""

    def __init__(self, anchor: TrustAnchor, *, max_edges: int = 4096) -> None:
        self.anchor = anchor
        self._edges = LruMemo(max_edges)  # (issuer DER, subject DER, leaf?) → None once verified

    @property
    def hits(self) -> int:
        return self._edges.hits

    @property
    def misses(self) -> int:
        return self._edges.misses

    def _edge(self, issuer_der: bytes, subject_der: bytes, role: str) -> None:
        is_leaf = role == "document certificate"
        # The leaf flag is part of the key: leaf-only checks must run for a pair first seen as CA → CA.
        self._edges.get((issuer_der, subject_der, is_leaf), lambda: _check_edge_ders(issuer_der, subject_der, role))

    def verify(self, document: AttestationDocument, *, now: datetime, skew: timedelta) -> VerifiedChain:
        bundle = document.cabundle
        if bundle[0] != self.anchor.der:
            raise CERT_CHAIN_INVALID("cabundle[0] is not the pinned AWS Nitro Enclaves root")
        ders = (*bundle, document.certificate)
        if len(set(ders)) != len(ders):
            # A repeated (self-signed) root would still "chain"; no genuine bundle repeats a certificate.
            raise CERT_CHAIN_INVALID("cabundle repeats a certificate")
        for index in range(1, len(ders)):
            role = "document certificate" if index == len(bundle) else f"cabundle[{index}]"
            self._edge(ders[index - 1], ders[index], role)
        certs = [load_certificate(der) for der in ders]
        # pathLenConstraint: number of CA certificates that may follow this one (the leaf excluded).
        for index, cert in enumerate(certs[:-1]):
            limit = _path_length(cert)
            if limit is not None and len(bundle) - 1 - index > limit:
                raise CERT_CHAIN_INVALID(f"cabundle[{index}] pathLenConstraint exceeded")
        timestamp = document.timestamp
        for index, cert in enumerate(certs):
            role = "document certificate" if index == len(bundle) else f"cabundle[{index}]"
            # The signer must have been valid when it signed, and the chain must still be valid now.
            require_valid_at(cert, timestamp, f"{role} is not valid at the document timestamp")
            require_valid_at(cert, now, f"{role} is not valid at the verification time", skew=skew)
        return VerifiedChain(root=self.anchor, intermediates=tuple(certs[1:-1]), leaf=certs[-1])


def verify_signature(cose: CoseSign1, leaf: x509.Certificate) -> None:
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):  # _check_leaf already required P-384
        raise CERT_CHAIN_INVALID("document certificate key is not ECDSA")
    try:
        key.verify(ecdsa_der_signature(cose.signature, _P384_COORD), cose.sig_structure(), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise NITRO_SIGNATURE_INVALID() from None


def verify_document(
    parsed: ParsedDocument,
    chains: ChainVerifier,
    *,
    now: datetime,
    skew: timedelta,
    binding: ExpectedBinding | None,
) -> VerifiedDocument:
    chain = chains.verify(parsed.document, now=now, skew=skew)
    verify_signature(parsed.cose, chain.leaf)
    if binding is not None:
        # An absent nonce compares as empty and so never matches the 32-byte expected value.
        require_equal("nitro nonce", parsed.document.nonce or b"", binding.nitro_nonce())
    return VerifiedDocument(document=parsed.document, chain=chain, nonce_checked=binding is not None)


def check_freshness(document: AttestationDocument, *, now: datetime, skew: timedelta) -> None:
    """A document from the future is a verification failure; its maximum age is a policy rule
    (``max_evidence_age_seconds`` over ``verifier.evidence_issued_at``; 300 s in the built-in default)."""
    if document.timestamp > now + skew:
        raise NITRO_DOCUMENT_FROM_FUTURE()
