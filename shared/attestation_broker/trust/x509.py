"""Strict loading of X.509 certificates, CRLs and public keys from untrusted bytes (RFC 5280 §4, §5).

``cryptography`` parses a certificate's fields lazily: ``load_der_x509_certificate`` accepts bytes whose
subject, issuer, extensions or public key fail to decode, and the failure surfaces later — as
``ValueError``, ``DuplicateExtension``, ``UnsupportedGeneralNameType``, ``UnsupportedAlgorithm`` or
``InvalidVersion`` — from whatever check touches the field first. Every loader here therefore forces
every lazily parsed field once, at load time, and turns any failure into the caller's typed error for
that certificate's role (``SNP_CERTIFICATE_MALFORMED``, ``TDX_CERT_DATA_INVALID``, ...). A certificate
returned by these loaders can be inspected by the chain builder without raising anything untyped.

Certificates are memoized by their exact bytes (parsing is the costly part of a chain check); failures
are never memoized.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from attestation_broker.errors import BrokerError

ErrorFactory = Callable[[str], BrokerError]


class _Unparsable(ValueError):
    """Internal: a certificate or CRL field does not decode."""


def _force_certificate(cert: x509.Certificate) -> x509.Certificate:
    """Touch every lazily decoded field; raises _Unparsable when one does not decode."""
    try:
        _ = cert.version, cert.serial_number, cert.subject, cert.issuer
        _ = cert.not_valid_before_utc, cert.not_valid_after_utc
        _ = cert.signature_algorithm_oid, cert.signature_algorithm_parameters, cert.signature_hash_algorithm
        for ext in cert.extensions:
            _ = ext.value
        cert.public_key()
    except Exception as exc:  # noqa: BLE001 - any decoding failure of attacker bytes is "malformed"
        raise _Unparsable(type(exc).__name__) from None
    return cert


@lru_cache(maxsize=1024)
def _der_certificate(der: bytes) -> x509.Certificate:
    with warnings.catch_warnings():
        # AMD VCEK/VLEK certificates carry serial number 0, which cryptography warns about.
        warnings.simplefilter("ignore")
        try:
            cert = x509.load_der_x509_certificate(der)
        except Exception:  # noqa: BLE001
            raise _Unparsable("der") from None
        return _force_certificate(cert)


def parse_der_certificate(der: bytes) -> x509.Certificate:
    """One DER certificate with every field decoded, or ``ValueError`` (for callers with their own mapping)."""
    return _der_certificate(bytes(der))


def parse_pem_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, each fully decoded, or ``ValueError``. Memoized by the exact PEM bytes
    (a TDX quote carries its PCK chain as PEM: decoding and re-encoding it cost about a fifth of a warm TDX
    verification); each certificate is the object the DER memo holds for its bytes."""
    return list(_pem_certificates(bytes(pem)))


@lru_cache(maxsize=256)
def _pem_certificates(pem: bytes) -> tuple[x509.Certificate, ...]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pems = x509.load_pem_x509_certificates(pem)
    except Exception:  # noqa: BLE001
        raise _Unparsable("pem") from None
    return tuple(_der_certificate(c.public_bytes(serialization.Encoding.DER)) for c in pems)


def load_certificate(data: bytes, error: ErrorFactory, what: str) -> x509.Certificate:
    """One certificate, DER or PEM; ``error(detail)`` is raised when it does not fully decode."""
    certs = load_certificates(data, error, what)
    if len(certs) != 1:
        raise error(f"{what} must be exactly one certificate")
    return certs[0]


def load_certificates(data: bytes, error: ErrorFactory, what: str) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle, or the single certificate of DER bytes; each fully decoded."""
    try:
        if b"-----BEGIN" in data:
            return tuple(parse_pem_certificates(data))
        return (_der_certificate(bytes(data)),)
    except Exception:  # noqa: BLE001
        raise error(f"{what} is not a well-formed X.509 certificate") from None


def load_crl(data: bytes, error: ErrorFactory, what: str) -> x509.CertificateRevocationList:
    """One CRL, DER or PEM, with its issuer, dates, extensions and entries decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pem = b"-----BEGIN" in data[:64]
            crl = x509.load_pem_x509_crl(data) if pem else x509.load_der_x509_crl(data)
            _ = crl.issuer, crl.last_update_utc, crl.next_update_utc, crl.signature_hash_algorithm
            for ext in crl.extensions:
                _ = ext.value
            for entry in crl:
                _ = entry.serial_number, entry.revocation_date_utc
                for ext in entry.extensions:
                    _ = ext.value
    except Exception:  # noqa: BLE001
        raise error(f"{what} is not a well-formed X.509 CRL") from None
    return crl


def load_public_key(data: bytes, error: ErrorFactory, what: str) -> PublicKeyTypes:
    """A SubjectPublicKeyInfo, PEM or DER, of a key type the library supports."""
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_public_key(data)
        return serialization.load_der_public_key(data)
    except Exception:  # noqa: BLE001
        raise error(f"{what} is not a supported public key") from None
