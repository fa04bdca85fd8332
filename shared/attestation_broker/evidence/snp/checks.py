"""SEV-SNP signature, certificate-chain and CRL checks (SEV-SNP ABI spec #56860 §"Attestation" and the
SIGNATURE table; AMD KDS spec #57230 for the VCEK/VLEK → ASK/ASVK → ARK chain and the ARK-signed CRL).

* The ARK (and the ASK/ASVK it signs) are pinned package data per product line; an ARK carried in the
  evidence is never a trust anchor. An evidence-supplied ASK/ASVK is used only if it verifies under the
  pinned ARK of the report's product.
* Chain verification is the shared hand-written walker
  :func:`attestation_broker.trust.chain.verify_ordered_path` (cryptography's verifier forbids AMD's RSA-PSS
  SHA-384 signature algorithm; see that module): issuer names, RSA-PSS signatures, CA basicConstraints and
  keyUsage, path length, leaf not a CA, memoized in the shared path memo, and the verified chain (leaf key,
  AMD extensions) memoized per leaf certificate; validity
  periods (:func:`attestation_broker.trust.chain.require_valid`, the configured clock skew), CRL freshness
  and revocation are checked against ``now`` on every call.
* The report signature is ECDSA P-384/SHA-384 over bytes 0x000..0x29F; R and S are little-endian.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, cached_property, partial

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from attestation_broker.errors import (
    CERT_CHAIN_INVALID,
    CERT_REVOKED,
    COLLATERAL_EXPIRED,
    COLLATERAL_INVALID,
    CONFIG_INVALID,
)
from attestation_broker.evidence.common import LruMemo
from attestation_broker.evidence.snp.abi import PRODUCTS, AttestationReport, TcbVersion
from attestation_broker.evidence.snp.certs import LeafInfo, SuppliedCert, leaf_info, load_certificate
from attestation_broker.evidence.snp.errors import (
    SNP_CERTIFICATE_MALFORMED,
    SNP_CHIP_ID_MISMATCH,
    SNP_PRODUCT_MISMATCH,
    SNP_SIGNATURE_INVALID,
    SNP_TCB_MISMATCH,
)
from attestation_broker.trust.chain import Same, require_valid, verify_ordered_path
from attestation_broker.trust.roots import root_bytes
from attestation_broker.trust.x509 import load_crl as strict_crl

# ---------------------------------------------------------------------------------------------------
# Pinned roots


@dataclass(frozen=True)
class ProductRoots:
    """The pinned AMD hierarchy of one product line."""

    product: str
    ark: x509.Certificate
    ask: x509.Certificate  # signs VCEKs
    asvk: x509.Certificate | None  # signs VLEKs
    # SHA-256 over the DER of ARK, ASK and ASVK: keys the memo tables, so results verified under one
    # set of roots are never served for another.
    fingerprint: bytes = b""

    def intermediate_for(self, kind: str) -> x509.Certificate | None:
        return self.ask if kind == "vcek" else self.asvk


def _verify_issued(child: x509.Certificate, issuer: x509.Certificate) -> None:
    """Build-time consistency of the pinned package data only (ARK self-signed, ASK/ASVK under it); evidence
    chains go through the shared walker (:func:`verify_chain`)."""
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        raise CERT_CHAIN_INVALID(f"{_cn(child)} is not signed by {_cn(issuer)}") from None


def _fingerprinted(roots: ProductRoots) -> ProductRoots:
    digest = hashlib.sha256()
    for cert in (roots.ark, roots.ask, roots.asvk):
        digest.update(cert.public_bytes(Encoding.DER) if cert is not None else b"-")
    return dataclasses.replace(roots, fingerprint=digest.digest())


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else "certificate"


class AmdTrust:
    """Pinned ARK/ASK/ASVK per product. Built once; tests may build one from their own roots."""

    def __init__(self, roots: Mapping[str, ProductRoots]) -> None:
        for r in roots.values():
            # Fail at build time if the package data is inconsistent.
            try:
                _verify_issued(r.ark, r.ark)
                _verify_issued(r.ask, r.ark)
                if r.asvk is not None:
                    _verify_issued(r.asvk, r.ark)
            except Exception as exc:  # noqa: BLE001 - rewrap as a configuration error
                raise CONFIG_INVALID(f"pinned AMD roots for {r.product} do not verify: {exc}") from None
        self._roots = {name: _fingerprinted(r) for name, r in roots.items()}

    def roots(self, product: str) -> ProductRoots:
        found = self._roots.get(product)
        if found is None:
            raise CERT_CHAIN_INVALID(f"no pinned AMD roots for product {product}")
        return found

    @classmethod
    def from_pems(cls, pems: Mapping[str, tuple[bytes, bytes | None]]) -> AmdTrust:
        """Build from ``{product: (vcek_chain_pem, vlek_chain_pem)}``; each PEM is [ASK/ASVK, ARK]."""
        out: dict[str, ProductRoots] = {}
        for product, (vcek_pem, vlek_pem) in pems.items():
            ask, ark = _chain_pair(x509.load_pem_x509_certificates(vcek_pem))
            asvk = None
            if vlek_pem is not None:
                asvk, ark2 = _chain_pair(x509.load_pem_x509_certificates(vlek_pem))
                if ark2.public_bytes(Encoding.DER) != ark.public_bytes(Encoding.DER):
                    raise CONFIG_INVALID(f"{product} VCEK and VLEK chains name different ARKs")
            out[product] = ProductRoots(product, ark, ask, asvk)
        return cls(out)


def _chain_pair(certs: list[x509.Certificate]) -> tuple[x509.Certificate, x509.Certificate]:
    roots = [c for c in certs if c.subject == c.issuer]
    others = [c for c in certs if c.subject != c.issuer]
    if len(roots) != 1 or len(others) != 1:
        raise CONFIG_INVALID("an AMD chain file must hold exactly one intermediate and one ARK")
    return others[0], roots[0]


@cache
def pinned_trust() -> AmdTrust:
    """The ARKs shipped in ``trust/roots/amd``, each file checked against its MANIFEST.json SHA-256."""
    pems: dict[str, tuple[bytes, bytes | None]] = {}
    for product in PRODUCTS:
        lower = product.lower()
        pems[product] = (root_bytes("amd", f"ask_ark_{lower}_vcek.pem"), root_bytes("amd", f"ask_ark_{lower}_vlek.pem"))
    return AmdTrust.from_pems(pems)


# ---------------------------------------------------------------------------------------------------
# Chain

_CHAIN_MEMO_MAX = 1024


@dataclass(frozen=True)
class VerifiedChain:
    """A leaf proven to chain to a pinned ARK. Time-dependent checks are not part of it."""

    leaf_der: bytes
    leaf: x509.Certificate
    info: LeafInfo
    public_key: ec.EllipticCurvePublicKey
    intermediate: x509.Certificate
    intermediate_pinned: bool
    roots: ProductRoots

    @cached_property
    def leaf_sha256(self) -> str:
        return hashlib.sha256(self.leaf_der).hexdigest()

    @cached_property
    def intermediate_subject(self) -> str:
        return self.intermediate.subject.rfc4514_string()

    @cached_property
    def leaf_issued(self) -> str:
        return self.leaf.not_valid_before_utc.isoformat().replace("+00:00", "Z")


def _checked_leaf(leaf: SuppliedCert, kind: str) -> tuple[LeafInfo, ec.EllipticCurvePublicKey]:
    info = leaf_info(leaf.der)
    if info.kind != kind:
        raise CERT_CHAIN_INVALID(f"certificate is a {info.kind.upper()}, expected {kind.upper()}")
    public_key = leaf.cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP384R1):
        raise SNP_CERTIFICATE_MALFORMED("endorsement key is not ECDSA P-384")
    return info, public_key


# Verified chains by (leaf, kind, roots, supplied intermediates): the issuer choice, the leaf's public key, its AMD
# extensions and the cached properties (digest, subject string) are computed once per VCEK, not once per report.
_chains = LruMemo(_CHAIN_MEMO_MAX)


def _build_chain(
    leaf: SuppliedCert, kind: str, roots: ProductRoots, intermediate: x509.Certificate, pinned: bool
) -> VerifiedChain:
    info, public_key = _checked_leaf(leaf, kind)
    verify_ordered_path([leaf.cert, intermediate, roots.ark], max_depth=3, what=f"{kind.upper()} chain")
    return VerifiedChain(leaf.der, leaf.cert, info, public_key, intermediate, pinned, roots)


def verify_chain(
    leaf: SuppliedCert, kind: str, roots: ProductRoots, intermediates: Iterable[SuppliedCert] = ()
) -> VerifiedChain:
    """Prove ``leaf`` (VCEK/VLEK) chains to the pinned ARK of ``roots``.

    The pinned ASK/ASVK is used when the leaf names it as issuer; otherwise an evidence-supplied
    intermediate is used only when the leaf names it as issuer and the whole path leaf → it → pinned ARK
    verifies (the shared walker memoizes by the exact DER bytes of all three, so a path through a supplied
    intermediate is only reused when that same intermediate is supplied again)."""
    supplied = tuple(intermediates)
    key = (Same(leaf.cert), kind, roots.fingerprint, tuple(Same(item.cert) for item in supplied))
    return _chains.get(key, partial(_verify_chain, leaf, kind, roots, supplied))


def _verify_chain(
    leaf: SuppliedCert, kind: str, roots: ProductRoots, intermediates: tuple[SuppliedCert, ...]
) -> VerifiedChain:
    pinned = roots.intermediate_for(kind)
    if pinned is not None and leaf.cert.issuer == pinned.subject:
        return _build_chain(leaf, kind, roots, pinned, True)
    for item in intermediates:
        if item.cert.subject != leaf.cert.issuer or item.cert.subject == item.cert.issuer:
            continue
        return _build_chain(leaf, kind, roots, item.cert, False)
    _checked_leaf(leaf, kind)  # a malformed or wrong-kind leaf is reported as such, before "no chain"
    raise CERT_CHAIN_INVALID(
        f"{kind.upper()} issuer {leaf.cert.issuer.rfc4514_string()} does not chain to the pinned ARK-{roots.product}"
    )


def check_validity(chain: VerifiedChain, now: datetime, skew: timedelta) -> None:
    """Validity periods of leaf, intermediate and ARK at ``now`` (± allowed clock skew), the shared rule."""
    require_valid([chain.leaf, chain.intermediate, chain.roots.ark], now, skew, f"{chain.info.kind.upper()} chain")


def check_leaf_product(chain: VerifiedChain, product: str) -> None:
    named = chain.info.product
    if named is not None and named != product:
        raise SNP_PRODUCT_MISMATCH(f"certificate names {named}, report is {product}")


# ---------------------------------------------------------------------------------------------------
# Report ↔ certificate


def verify_report_signature(report: AttestationReport, public_key: ec.EllipticCurvePublicKey) -> None:
    signature = encode_dss_signature(report.signature_r, report.signature_s)
    try:
        public_key.verify(signature, report.signed_bytes, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise SNP_SIGNATURE_INVALID() from None


def check_tcb(info: LeafInfo, reported: TcbVersion) -> None:
    cert_tcb = TcbVersion(info.bootloader, info.tee, info.snp, info.microcode, info.fmc)
    if reported.fmc is None:
        cert_tcb = TcbVersion(info.bootloader, info.tee, info.snp, info.microcode, None)
    if cert_tcb != reported:
        raise SNP_TCB_MISMATCH(f"certificate TCB {cert_tcb.as_dict()} != REPORTED_TCB {reported.as_dict()}")


def hwid_for(product: str, chip_id: bytes) -> bytes:
    """The KDS hwID of a chip: the full 64-byte CHIP_ID, or its first 8 bytes on Turin."""
    return chip_id[:8] if product == "Turin" else chip_id


def check_chip_id(info: LeafInfo, report: AttestationReport, product: str) -> None:
    if info.hwid is None or info.hwid != hwid_for(product, report.chip_id):
        raise SNP_CHIP_ID_MISMATCH()


# ---------------------------------------------------------------------------------------------------
# CRL


@dataclass(frozen=True)
class VerifiedCrl:
    """An AMD CRL whose signature verified under the pinned ARK. Freshness is checked per call."""

    der: bytes
    last_update: datetime
    next_update: datetime
    revoked: frozenset[int]
    product: str


_MEMO_MAX = 4096
_crls = LruMemo(_MEMO_MAX)  # (CRL bytes sha256, roots.fingerprint) → VerifiedCrl


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    return strict_crl(data, COLLATERAL_INVALID, "AMD CRL")


def verify_crl(data: bytes, roots: ProductRoots) -> VerifiedCrl:
    """Parse an AMD CRL (PEM or DER) and verify it is issued and signed by the pinned ARK."""
    return _crls.get((hashlib.sha256(data).digest(), roots.fingerprint), partial(_verify_crl, data, roots))


def _verify_crl(data: bytes, roots: ProductRoots) -> VerifiedCrl:
    crl = load_crl(data)
    if crl.issuer != roots.ark.subject:
        raise COLLATERAL_INVALID(f"CRL issuer is not ARK-{roots.product}")
    ark_key = roots.ark.public_key()
    if not isinstance(ark_key, rsa.RSAPublicKey) or not crl.is_signature_valid(ark_key):
        raise COLLATERAL_INVALID(f"CRL signature does not verify under ARK-{roots.product}")
    next_update = crl.next_update_utc
    if next_update is None:
        raise COLLATERAL_INVALID("CRL has no nextUpdate")
    return VerifiedCrl(
        der=data,
        last_update=crl.last_update_utc,
        next_update=next_update,
        revoked=frozenset(entry.serial_number for entry in crl),
        product=roots.product,
    )


def check_crl_fresh(crl: VerifiedCrl, now: datetime, skew: timedelta, grace: timedelta = timedelta(0)) -> None:
    if crl.last_update > now + skew:
        raise COLLATERAL_INVALID(f"CRL thisUpdate {crl.last_update.isoformat()} is in the future")
    if now > crl.next_update + grace:
        raise COLLATERAL_EXPIRED(
            f"AMD CRL expired at {crl.next_update:%Y-%m-%dT%H:%M:%SZ} (its nextUpdate); get a current one from AMD KDS"
        )


def check_not_revoked(crl: VerifiedCrl, cert: x509.Certificate) -> None:
    if cert.serial_number in crl.revoked:
        raise CERT_REVOKED(f"{_cn(cert)} serial 0x{cert.serial_number:x} is revoked by the AMD CRL")


__all__ = [
    "AmdTrust",
    "ProductRoots",
    "VerifiedChain",
    "VerifiedCrl",
    "check_chip_id",
    "check_crl_fresh",
    "check_leaf_product",
    "check_not_revoked",
    "check_tcb",
    "check_validity",
    "hwid_for",
    "load_certificate",
    "pinned_trust",
    "verify_chain",
    "verify_crl",
    "verify_report_signature",
]
