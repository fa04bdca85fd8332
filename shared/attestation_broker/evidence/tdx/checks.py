"""Signature, chain, CRL and collateral checks for TDX DCAP (every check raises; success returns data).

Implements the verification steps of Intel's DCAP quote verification: quote signature by the
attestation key (ECDSA P-256/SHA-256, raw r||s over header ‖ body), QE report signature by the PCK
key, QE REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes, the PCK and root CRLs
(RFC 5280 §6.3: signature, issuer, thisUpdate/nextUpdate, revocation), and the Intel-signed TCB info
and QE identity (TCB Signing certificate from the collateral's issuer chain → pinned Intel SGX Root CA).

Pure signature work is memoized by the exact bytes and the verifying key (a bounded LRU), so cached
collateral costs nothing to re-verify; time windows and revocation are evaluated on every call.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestation_broker.errors import (
    CERT_CHAIN_INVALID,
    CERT_REVOKED,
    COLLATERAL_EXPIRED,
    COLLATERAL_INVALID,
    ErrorCode,
)
from attestation_broker.evidence.common import LruMemo, ecdsa_der_signature
from attestation_broker.evidence.tdx.abi import Quote
from attestation_broker.evidence.tdx.errors import (
    TDX_QE_REPORT_DATA_MISMATCH,
    TDX_QE_REPORT_SIGNATURE_INVALID,
    TDX_QUOTE_SIGNATURE_INVALID,
)
from attestation_broker.evidence.tdx.pck import PckChain
from attestation_broker.evidence.tdx.pcs import QeIdentity, SignedJson, TcbInfo, parse_qe_identity, parse_tcb_info
from attestation_broker.evidence.tdx.trust import TdxTrust
from attestation_broker.trust.chain import verify_path
from attestation_broker.trust.x509 import load_crl as strict_crl
from attestation_broker.trust.x509 import parse_pem_certificates

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


_MEMO = LruMemo(512)


def ecdsa_verify(key: ec.EllipticCurvePublicKey, sig: bytes, data: bytes, code: ErrorCode, what: str) -> None:
    if len(sig) != 64:
        raise code(f"{what}: signature is not 64 bytes")
    try:
        key.verify(ecdsa_der_signature(sig, 32), data, _ECDSA_SHA256)
    except InvalidSignature:
        raise code(f"{what} does not verify") from None


def attestation_key(raw: bytes) -> ec.EllipticCurvePublicKey:
    # A QE's attestation key is the same in every quote of a platform: decode each point once (the point check
    # is a tenth of a quote's verification), never memoizing a failure.
    try:
        return _attestation_key(bytes(raw))
    except ValueError:
        raise TDX_QUOTE_SIGNATURE_INVALID("attestation key is not a P-256 point") from None


@lru_cache(maxsize=1024)
def _attestation_key(raw: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)


def verify_quote_signatures(quote: Quote, chain: PckChain) -> None:
    """QE report signed by the PCK key, QE report binds the attestation key, quote signed by that key."""
    ecdsa_verify(
        chain.leaf_key,
        quote.qe_report_signature,
        quote.qe_report.raw,
        TDX_QE_REPORT_SIGNATURE_INVALID,
        "QE report signature",
    )
    expected = hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest() + bytes(32)
    if not hmac.compare_digest(quote.qe_report.report_data, expected):
        raise TDX_QE_REPORT_DATA_MISMATCH("QE report data does not bind the attestation key")
    ak = attestation_key(quote.attestation_key)
    ecdsa_verify(ak, quote.signature, quote.signed, TDX_QUOTE_SIGNATURE_INVALID, "quote signature")


# --- time windows -------------------------------------------------------------------------------


def check_window(
    what: str, issued: datetime, next_update: datetime, now: datetime, *, skew: timedelta, grace: timedelta
) -> None:
    """issued <= now (+skew) and now <= next_update (+grace, used only for stale-if-error copies)."""
    if issued > now + skew:
        raise COLLATERAL_INVALID(f"{what} is issued in the future")
    if now > next_update + grace:
        raise COLLATERAL_EXPIRED(f"{what} expired at {next_update:%Y-%m-%dT%H:%M:%SZ} (its nextUpdate)")


# --- CRLs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCrl:
    this_update: datetime
    next_update: datetime
    revoked: frozenset[int]


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data[:1] == b"\x30":
        return strict_crl(data, COLLATERAL_INVALID, "CRL")  # never strip DER: trailing bytes may look like whitespace
    text = data.strip()
    if not text.startswith(b"-----BEGIN"):
        try:
            text = binascii.unhexlify(text)  # PCCS serves hex
        except (ValueError, binascii.Error):
            raise COLLATERAL_INVALID("CRL does not decode") from None
    return strict_crl(text, COLLATERAL_INVALID, "CRL")


def crl_next_update(data: bytes) -> datetime | None:
    return _load_crl(data).next_update_utc


def _verify_crl(data: bytes, issuer: x509.Certificate, what: str) -> VerifiedCrl:
    crl = _load_crl(data)
    if crl.issuer != issuer.subject:
        raise COLLATERAL_INVALID(f"{what} is not issued by {issuer.subject.rfc4514_string()}")
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(key):
        raise COLLATERAL_INVALID(f"{what} signature does not verify")
    if crl.next_update_utc is None:
        raise COLLATERAL_INVALID(f"{what} has no nextUpdate")
    return VerifiedCrl(crl.last_update_utc, crl.next_update_utc, frozenset(r.serial_number for r in crl))


def verify_crl(data: bytes, issuer: x509.Certificate, what: str) -> VerifiedCrl:
    return _MEMO.get(("crl", data, issuer), lambda: _verify_crl(data, issuer, what))


def require_not_revoked(crl: VerifiedCrl, cert: x509.Certificate, what: str) -> None:
    if cert.serial_number in crl.revoked:
        raise CERT_REVOKED(f"{what} certificate is revoked")


# --- TCB Signing chain and signed JSON -------------------------------------------------------------


def chain_signer(
    chain_pem: bytes | None, trust: TdxTrust, now: datetime, skew: timedelta = timedelta(0)
) -> x509.Certificate:
    """The TCB Signing certificate from an issuer chain ``[signer, root]`` (root optional), verified to the pin.

    Only the root is pinned; the signer is whatever Intel currently uses, as long as the pinned root issued it
    directly (Intel's TCB Signing chain has no intermediate) and it is an end-entity ECDSA key. Path validation
    (signature, validity at ``now`` ± ``skew``, the root's CA policy, "leaf is not a CA") is the shared path
    builder's (:func:`attestation_broker.trust.chain.verify_path`, memoized by the exact certificates); the
    caller still judges validity and revocation at every use of a memoized result.
    """
    if not chain_pem:
        raise CERT_CHAIN_INVALID("TCB signing issuer chain is missing (the TCB Signing certificate is not pinned)")
    try:
        certs = parse_pem_certificates(chain_pem)
    except ValueError:
        raise CERT_CHAIN_INVALID("TCB signing issuer chain does not decode") from None
    if not certs or len(certs) > 2 or (len(certs) == 2 and certs[1] != trust.root):
        raise CERT_CHAIN_INVALID("TCB signing issuer chain does not end in the pinned Intel SGX Root CA")
    signer = certs[0]
    if signer == trust.root:
        raise CERT_CHAIN_INVALID("TCB signing issuer chain holds only the root")
    verify_path(signer, [], [trust.root], now=now, skew=skew, max_depth=2, what="TCB Signing chain")
    key = signer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CERT_CHAIN_INVALID("TCB signing key is not ECDSA")
    return signer


def _verify_signed(signed: SignedJson, key: str, signer: x509.Certificate) -> dict[str, object]:
    pub = signer.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise CERT_CHAIN_INVALID("TCB signing key is not ECDSA")
    ecdsa_verify(pub, signed.signature, signed.signed, COLLATERAL_INVALID, f"{key} signature")
    return signed.body


def verify_tcb_info(pair: SignedJson, signer: x509.Certificate) -> TcbInfo:
    return _MEMO.get(
        ("tcb", pair.signed, pair.signature, signer),
        lambda: parse_tcb_info(_verify_signed(pair, "tcbInfo", signer)),
    )


def verify_qe_identity(pair: SignedJson, signer: x509.Certificate) -> QeIdentity:
    return _MEMO.get(
        ("qe", pair.signed, pair.signature, signer),
        lambda: parse_qe_identity(_verify_signed(pair, "enclaveIdentity", signer)),
    )
