"""Revocation of NVIDIA device and RIM signer certificates through NVIDIA's OCSP service (RFC 6960),
fetched through the broker's collateral cache.

:func:`check_chain` asks about every certificate of a verified chain below its pinned root: the device
chain (leaf, BROM, provisioner ICA, identity CA) and, as NVIDIA's local verifier does for RIMs, each RIM's
signer chain (L4 signer, L3 CA, Reference Value CA). Both go to the same responder
(``nvidia_ocsp_url``) and the same cache; each result names the chain it belongs to (``role``).

Requests use the GET form of RFC 6960 Appendix A.1 (``{responder}/{url-safe base64 of the DER
OCSPRequest}``), without a request nonce, so that one response per certificate can be cached until its
``nextUpdate``. A response counts only when it is ``successful``, names exactly the certificate asked
about, is signed by the certificate's issuer or by a delegated responder certificate, and is current at
``now``. A delegate (RFC 6960 §4.2.2.2) must be issued directly by the issuer of the certificate in
question — a fixed two-certificate path, checked by the shared walker
(:func:`attestation_broker.trust.chain.verify_ordered_path`: name, signature, the issuer's basicConstraints
cA and keyUsage keyCertSign, the delegate not a CA) and the shared validity check with clock skew
(:func:`~attestation_broker.trust.chain.require_valid`) — and carry extendedKeyUsage id-kp-OCSPSigning. The
walker rather than cryptography's path builder because the issuer may be one of NVIDIA's RIM signing CAs,
whose GeneralizedTime validity the builder refuses (see ``rim.py``).

``revoked`` (any reason, including certificateHold, as NVIDIA's verifier treats it) is CERT_REVOKED;
``unknown`` or no usable answer is COLLATERAL_UNAVAILABLE. Parsing and request building use ``cryptography.x509.ocsp``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from attestation_broker.errors import CERT_REVOKED, COLLATERAL_INVALID, COLLATERAL_UNAVAILABLE, BrokerError
from attestation_broker.trust.chain import require_valid, verify_ordered_path
from attestation_broker.verifier import VerifyContext

from .checks import DeviceChain


@dataclass(frozen=True)
class OcspResult:
    subject: str
    status: str
    this_update: datetime
    next_update: datetime | None
    source: str
    url: str
    role: str = "device"  # "device" | "rim-signer"

    def record(self) -> dict[str, Any]:
        return {
            "type": "ocsp",
            "role": self.role,
            "subject": self.subject,
            "status": self.status,
            "issued": self.this_update.isoformat(),
            "next_update": self.next_update.isoformat() if self.next_update else None,
            "source": self.source,
            "url": self.url,
            "stale": False,
        }


def request_url(responder: str, cert: x509.Certificate, issuer: x509.Certificate) -> str:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA384()).build()
    encoded = base64.urlsafe_b64encode(request.public_bytes(Encoding.DER)).decode()
    return f"{responder.rstrip('/')}/{encoded}"


def _verify_signed_by(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(response.signature, response.tbs_response_bytes, PKCS1v15(), algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _delegate_ok(delegate: x509.Certificate, issuer: x509.Certificate, now: datetime, skew: timedelta) -> bool:
    try:
        verify_ordered_path([delegate, issuer], max_depth=2, what="the OCSP responder", error=COLLATERAL_INVALID)
        require_valid([delegate], now, skew, "the OCSP responder")
        usage = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (BrokerError, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usage


def _responder_ok(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime, skew: timedelta) -> bool:
    if _verify_signed_by(response, issuer):
        return True
    return any(
        _delegate_ok(delegate, issuer, now, skew) and _verify_signed_by(response, delegate)
        for delegate in response.certificates
    )


def check_response(
    body: bytes, cert: x509.Certificate, issuer: x509.Certificate, *, now: datetime, skew: timedelta
) -> ocsp.OCSPResponse:
    """The verified single response about ``cert``; COLLATERAL_INVALID when it cannot be trusted."""
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError:
        raise COLLATERAL_INVALID("the OCSP response is not DER") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise COLLATERAL_INVALID(f"the OCSP responder answered {response.response_status.name}")
    singles = list(response.responses)
    if len(singles) != 1 or singles[0].serial_number != cert.serial_number:
        raise COLLATERAL_INVALID("the OCSP response is not about the certificate asked for")
    single = singles[0]
    expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, single.hash_algorithm).build()
    if (single.issuer_key_hash, single.issuer_name_hash) != (expected.issuer_key_hash, expected.issuer_name_hash):
        raise COLLATERAL_INVALID("the OCSP response names another issuer")
    if not _responder_ok(response, issuer, now, skew):
        raise COLLATERAL_INVALID("the OCSP response is not signed by the issuer or its OCSP responder")
    if single.this_update_utc > now + skew:
        raise COLLATERAL_INVALID("the OCSP response is issued in the future")
    if single.next_update_utc is not None and single.next_update_utc < now - skew:
        raise COLLATERAL_INVALID("the OCSP response is past its nextUpdate")
    return response


def _validated(
    body: bytes, cert: x509.Certificate, issuer: x509.Certificate, *, now: datetime, skew: timedelta
) -> None:
    check_response(body, cert, issuer, now=now, skew=skew)


def check_certificate(
    ctx: VerifyContext, cert: x509.Certificate, issuer: x509.Certificate, *, responder: str, role: str = "device"
) -> OcspResult:
    """Revocation status of ``cert`` (CERT_REVOKED when revoked); the result is for verifier claims."""
    skew = timedelta(seconds=ctx.settings.clock_skew_seconds)
    url = request_url(responder, cert, issuer)

    def expires(body: bytes) -> datetime | None:
        single = next(iter(ocsp.load_der_ocsp_response(body).responses))
        # No nextUpdate: newer information is always available (RFC 6960 §4.2.2.1); keep it one hour.
        return single.next_update_utc or ctx.now + timedelta(hours=1)

    obj = ctx.collateral.get(
        url,
        now=ctx.now,
        expires=expires,
        validate=lambda body: _validated(body, cert, issuer, now=ctx.now, skew=skew),
        collateral_type="ocsp",
    )
    single = next(iter(check_response(obj.body, cert, issuer, now=ctx.now, skew=skew).responses))
    subject = cert.subject.rfc4514_string()
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        reason = single.revocation_reason.name if single.revocation_reason else "unspecified"
        raise CERT_REVOKED(f"OCSP reports {subject} revoked ({reason})")
    if single.certificate_status != ocsp.OCSPCertStatus.GOOD:
        raise COLLATERAL_UNAVAILABLE(f"OCSP does not know {subject}")
    return OcspResult(subject, "good", single.this_update_utc, single.next_update_utc, obj.source, url, role)


def check_chain(ctx: VerifyContext, chain: DeviceChain, *, role: str) -> tuple[OcspResult, ...]:
    """Every certificate of ``chain`` below its root, each against its issuer (CERT_REVOKED when one is
    revoked, COLLATERAL_UNAVAILABLE / COLLATERAL_INVALID when its status cannot be established)."""
    responder = ctx.settings.nvidia_ocsp_url
    return tuple(
        check_certificate(ctx, cert, chain.issuer_of(index), responder=responder, role=role)
        for index, cert in enumerate(chain.certificates)
    )
