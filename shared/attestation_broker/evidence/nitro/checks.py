"""Verify a parsed Nitro attestation document: certificate chain, COSE signature, nonce, freshness.

Implements the AWS Nitro Enclaves "Verifying the root of trust" §"Certificates validity" and
§"COSE signature validation", and RFC 9052 §4.4 / RFC 9053 §2.1 (ES384: ECDSA P-384 with SHA-384,
signature r ‖ s of 48 bytes each). Order: chain (root pin, profile, validity at the document
time and at ``now``, path) → signature with the leaf key → nonce binding. Freshness against policy is a
separate call.

Chain: ``cabundle`` is root first; cabundle[0] must be byte-identical to the pinned AWS root and the
bundle followed by the document ``certificate`` must be exactly the issuance path. Signatures, CA basic
constraints and keyUsage, pathLenConstraint and "leaf is not a CA" are the shared path builder's
(:func:`attestation_broker.trust.chain.verify_path`, the same rules as every kind); the AWS profile on
top of it is checked here: P-384 keys, ECDSA-SHA384 signatures, no unrecognized critical extension,
validity at the document timestamp as well as at ``now``. The profile and name chaining depend on the
certificates alone, so they are memoized by the certificate objects (parsed through the memo by exact bytes;
:class:`attestation_broker.trust.chain.Same`), with the leaf's public key: a repeated bundle costs a dictionary
lookup, not five key loads. Time is judged on every call.
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
from attestation_broker.trust.chain import Same, verify_path

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


def _check_profile(certs: list[x509.Certificate], bundle_len: int) -> None:
    """The AWS Nitro certificate profile, beyond what the shared path builder checks: P-384 keys throughout,
    ECDSA-SHA384 signatures, no unrecognized critical extension, a leaf that may sign."""
    for index, cert in enumerate(certs):
        role = _role(index, bundle_len)
        _require_p384(cert, role)
        if index == 0:
            continue  # the pinned root is byte-compared, its self-signature is not part of the profile
        _no_unknown_critical(cert, role)
        if cert.signature_algorithm_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA384:
            raise CERT_CHAIN_INVALID(f"{role} is not signed with ECDSA-SHA384")
    leaf = certs[-1]
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


def _role(index: int, bundle_len: int) -> str:
    return "document certificate" if index == bundle_len else f"cabundle[{index}]"


# cabundle is root + at most a few intermediates (AWS issues root → regional → zonal → instance CAs).
MAX_DEPTH = 8


def verify_chain(
    document: AttestationDocument, anchor: TrustAnchor, *, now: datetime, skew: timedelta
) -> VerifiedChain:
    """cabundle + certificate to the pinned anchor, in the order AWS gives them (root first).

    Order of checks: the pinned root, no repeats, parsing, profile and name chaining, validity (at the document
    timestamp and at ``now``), then signatures and path. All but the validity periods depend only on the bundle's
    bytes and the anchor, so a chain that passed them is memoized by both and a repeated bundle (every document of
    an enclave's instance) costs only its validity checks; a chain that failed is never memoized.
    """
    ders = (*document.cabundle, document.certificate)
    chain = _CHAINS.get((ders, Same(anchor)), lambda: _verify_chain(document, anchor, now=now, skew=skew))
    _require_valid(chain, document.timestamp, now, skew)
    return chain


_CHAINS = LruMemo(1024)  # (bundle + certificate DERs, anchor) → VerifiedChain that passed every time-free check


def _require_valid(chain: VerifiedChain, timestamp: datetime, now: datetime, skew: timedelta) -> None:
    certs = (chain.root.certificate, *chain.intermediates, chain.leaf)
    for index, cert in enumerate(certs):
        role = _role(index, len(certs) - 1)
        # The signer must have been valid when it signed, and the chain must still be valid now.
        require_valid_at(cert, timestamp, f"{role} is not valid at the document timestamp")
        require_valid_at(cert, now, f"{role} is not valid at the verification time", skew=skew)


def _verify_chain(
    document: AttestationDocument, anchor: TrustAnchor, *, now: datetime, skew: timedelta
) -> VerifiedChain:
    bundle = document.cabundle
    if bundle[0] != anchor.der:
        raise CERT_CHAIN_INVALID("cabundle[0] is not the pinned AWS Nitro Enclaves root")
    ders = (*bundle, document.certificate)
    if len(set(ders)) != len(ders):
        # A repeated (self-signed) root would still "chain"; no genuine bundle repeats a certificate.
        raise CERT_CHAIN_INVALID("cabundle repeats a certificate")
    try:
        certs = [load_certificate(der) for der in ders]
    except ValueError:
        raise CERT_CHAIN_INVALID("cabundle or certificate is not a DER certificate") from None
    _structure(certs, len(bundle))
    checked = VerifiedChain(root=anchor, intermediates=tuple(certs[1:-1]), leaf=certs[-1])
    # cabundle[0] is the anchor's DER, byte for byte; its validity is checked on the anchor's certificate object.
    _require_valid(checked, document.timestamp, now, skew)
    # Signatures, CA basic constraints and keyUsage, path length, leaf not a CA: the shared path builder.
    path = verify_path(
        certs[-1],
        certs[1:-1],
        [anchor.certificate],
        now=now,
        skew=skew,
        max_depth=MAX_DEPTH,
        what="Nitro cabundle",
    )
    # The builder may take the intermediates in any order; AWS's bundle is the path itself, root first.
    if path != [*reversed(certs[1:]), anchor.certificate]:
        raise CERT_CHAIN_INVALID("cabundle is not the issuance path, root first")
    return checked


# Certificates (by identity) whose profile and name chaining held → the leaf's public key.
_STRUCTURES = LruMemo(1024)


def _structure(certs: list[x509.Certificate], bundle_len: int) -> ec.EllipticCurvePublicKey:
    """The time-independent checks of a bundle + certificate (profile, then name chaining); the leaf key."""

    def check() -> ec.EllipticCurvePublicKey:
        _check_profile(certs, bundle_len)
        for index in range(1, len(certs)):
            # Name chaining first (cheap, time-independent): a certificate from another chain is a chain error,
            # whatever its validity window says.
            if certs[index].issuer != certs[index - 1].subject:
                raise CERT_CHAIN_INVALID(f"{_role(index, bundle_len)} is not issued by the previous certificate")
        key = certs[-1].public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):  # _check_profile already required P-384
            raise CERT_CHAIN_INVALID("document certificate key is not ECDSA")
        return key

    return _STRUCTURES.get((tuple(Same(cert) for cert in certs), bundle_len), check)


def verify_signature(cose: CoseSign1, leaf: x509.Certificate) -> None:
    key = _STRUCTURES.get((Same(leaf),), lambda: leaf.public_key())
    if not isinstance(key, ec.EllipticCurvePublicKey):  # _check_profile already required P-384
        raise CERT_CHAIN_INVALID("document certificate key is not ECDSA")
    try:
        key.verify(ecdsa_der_signature(cose.signature, _P384_COORD), cose.sig_structure(), ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise NITRO_SIGNATURE_INVALID() from None


def verify_document(
    parsed: ParsedDocument,
    anchor: TrustAnchor,
    *,
    now: datetime,
    skew: timedelta,
    binding: ExpectedBinding | None,
) -> VerifiedDocument:
    chain = verify_chain(parsed.document, anchor, now=now, skew=skew)
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
