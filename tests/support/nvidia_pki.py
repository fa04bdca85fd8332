"""TEST ONLY: an NVIDIA-shaped device PKI (root → identity → provisioner ICA → BROM → FMC leaf, ECDSA P-384,
basicConstraints and critical keyUsage as on NVIDIA's certificates) with OCSP responses, and SPDM reports re-signed by its leaf over a chosen requester nonce.

Real reports bind their capture's nonce, so checks that need a broker nonce (binding, composite CPU + GPU)
or a revocation answer (NVIDIA's OCSP responses are not public) use this hierarchy, injected through
``NvidiaGpuVerifier(roots=...)``; the pinned roots are never touched. Reports keep the measurement record
and opaque data of a real template report (so real RIMs still compare), with the nonce replaced and the
FWID replaced by this leaf's.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

from attestation_broker.evidence.nvidia_gpu.abi import FIELD_FWID, SIGNATURE_LENGTH, parse_report
from attestation_broker.evidence.nvidia_gpu.rim import DSIG_NS
from attestation_broker.evidence.nvidia_gpu.trust import NvidiaRoots
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree
from signxml import SignatureConstructionMethod, XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

NOT_BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2040, 1, 1, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST ONLY")]
    )


_CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
_LEAF_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    serial: int,
    extensions: tuple[x509.ExtensionType, ...] = (),
    key_usage: bool = True,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if key_usage:  # as NVIDIA's certificates: CAs sign certificates and CRLs, leaves sign only (critical)
        builder = builder.add_extension(_CA_USAGE if ca else _LEAF_USAGE, critical=True)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(issuer_key, hashes.SHA384())


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


SHA384_OID = bytes.fromhex("0609608648016503040202")


def hopper_tcb_info(fwid: bytes) -> x509.UnrecognizedExtension:
    """Hopper's layout under 2.23.133.5.4.1: SEQUENCE { INTEGER 1, FWID }."""
    fwid_der = _der(0x30, SHA384_OID + _der(0x04, fwid))
    value = _der(0x30, _der(0x02, b"\x01") + fwid_der)
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("2.23.133.5.4.1"), value)


@dataclass
class Device:
    """A chain below a root: a device (leaf, BROM, ICA, identity) or a RIM signer (L4 signer, L3, CA)."""

    keys: list[ec.EllipticCurvePrivateKey]  # leaf first, matching certs
    certs: list[x509.Certificate]  # root not included
    fwid: bytes
    root: x509.Certificate | None = None  # the anchor above certs[-1]; None: the device root
    root_key: ec.EllipticCurvePrivateKey | None = None

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certs)


@dataclass
class FakeNvidia:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    identity_key: ec.EllipticCurvePrivateKey
    identity: x509.Certificate
    ica_key: ec.EllipticCurvePrivateKey
    ica: x509.Certificate
    rim_root_key: ec.EllipticCurvePrivateKey
    rim_root: x509.Certificate
    rim_ca_key: ec.EllipticCurvePrivateKey
    rim_ca: x509.Certificate
    rim_l3_key: ec.EllipticCurvePrivateKey
    rim_l3: x509.Certificate
    serials: list[int] = field(default_factory=lambda: [100])

    @property
    def roots(self) -> NvidiaRoots:
        return NvidiaRoots(device=self.root, rim=self.rim_root)

    def _anchor(self, chain: Device) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if chain.root is not None and chain.root_key is not None:
            return chain.root, chain.root_key
        return self.root, self.root_key

    def _issuer(self, chain: Device, index: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        if index + 1 < len(chain.certs):
            return chain.certs[index + 1], chain.keys[index + 1]
        return self._anchor(chain)

    def rim_signer(self) -> Device:
        """A new RIM signer ("L4") under the test CoRIM hierarchy: [signer, L3, Reference Value CA]."""
        self.serials[0] += 1
        key = ec.generate_private_key(ec.SECP384R1())
        cert = _cert("TEST HCC RIM L4 Signer", key, self.rim_l3, self.rim_l3_key, ca=False, serial=self.serials[0])
        return Device(
            [key, self.rim_l3_key, self.rim_ca_key],
            [cert, self.rim_l3, self.rim_ca],
            b"",
            self.rim_root,
            self.rim_root_key,
        )

    def sign_rim(self, rim: bytes, signer: Device) -> bytes:
        """A real RIM's SWID content re-signed by ``signer`` the way NVIDIA signs (enveloped XML-DSig, C14N 1.1,
        ECDSA-SHA384, signer chain and root in X509Data), so real golden values compare under a test root."""
        tree = etree.fromstring(rim)
        for old in tree.findall(f"{{{DSIG_NS}}}Signature"):
            tree.remove(old)
        signed = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=SignatureMethod.ECDSA_SHA384,
            digest_algorithm=DigestAlgorithm.SHA384,
            c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1,
        ).sign(
            tree,
            key=signer.keys[0],
            cert=[c.public_bytes(serialization.Encoding.PEM).decode() for c in (*signer.certs, self.rim_root)],
        )
        out: bytes = etree.tostring(signed)
        return out

    def device(self, name: str = "GH100 A01 GSP FMC LF", *, brom_key_usage: bool = True) -> Device:
        self.serials[0] += 2
        brom_key = ec.generate_private_key(ec.SECP384R1())
        brom = _cert(
            "GH100 A01 GSP BROM",
            brom_key,
            self.ica,
            self.ica_key,
            ca=True,
            serial=self.serials[0],
            key_usage=brom_key_usage,
        )
        leaf_key = ec.generate_private_key(ec.SECP384R1())
        fwid = hashlib.sha384(name.encode() + bytes([self.serials[0] & 0xFF])).digest()
        leaf = _cert(
            name, leaf_key, brom, brom_key, ca=False, serial=self.serials[0] + 1, extensions=(hopper_tcb_info(fwid),)
        )
        return Device(
            [leaf_key, brom_key, self.ica_key, self.identity_key], [leaf, brom, self.ica, self.identity], fwid
        )

    def ocsp_response(
        self,
        device: Device,
        index: int,
        *,
        status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
        this_update: datetime = datetime(2025, 1, 1, tzinfo=UTC),
        next_update: datetime | None = datetime(2031, 1, 1, tzinfo=UTC),
        signer_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> bytes:
        """A DER OCSP response about device.certs[index], signed by its issuer (or ``signer_key``)."""
        cert = device.certs[index]
        issuer, issuer_key = self._issuer(device, index)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=issuer,
            algorithm=hashes.SHA384(),
            cert_status=status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=this_update if status == ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == ocsp.OCSPCertStatus.REVOKED else None,
        )
        responder = issuer
        if signer_key is not None:  # a key the issuer never certified
            responder = _cert("TEST stranger", signer_key, None, signer_key, ca=False, serial=7)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        return builder.sign(signer_key or issuer_key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)

    def delegated_responder(
        self,
        device: Device,
        index: int,
        *,
        ocsp_signing: bool = True,
        by_grandparent: bool = False,
        not_after: datetime = NOT_AFTER,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A responder certificate for device.certs[index]'s issuer (or, ``by_grandparent``, the CA above it)."""
        issuer, issuer_key = self._issuer(device, index + 1 if by_grandparent else index)
        key = ec.generate_private_key(ec.SECP384R1())
        usage = ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.CLIENT_AUTH
        cert = _cert(
            "TEST OCSP responder",
            key,
            issuer,
            issuer_key,
            ca=False,
            serial=9000 + index,
            extensions=(x509.ExtendedKeyUsage([usage]),),
            not_after=not_after,
        )
        return key, cert


def _hierarchy(*names: str, serial: int) -> list[tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]:
    """A self-signed root (``names[0]``) and the CAs below it, each issued by the one before."""
    out: list[tuple[ec.EllipticCurvePrivateKey, x509.Certificate]] = []
    for n, name in enumerate(names):
        key = ec.generate_private_key(ec.SECP384R1())
        issuer_key, issuer = out[-1] if out else (key, None)
        out.append((key, _cert(name, key, issuer, issuer_key, ca=True, serial=serial + n)))
    return out


@cache
def fake_nvidia() -> FakeNvidia:
    (root_key, root), (identity_key, identity), (ica_key, ica) = _hierarchy(
        "TEST NVIDIA Device Identity CA", "TEST NVIDIA GH100 Identity", "TEST NVIDIA GH100 Provisioner ICA 1", serial=1
    )
    (rim_root_key, rim_root), (rim_ca_key, rim_ca), (rim_l3_key, rim_l3) = _hierarchy(
        "TEST NVIDIA CoRIM signing Root CA",
        "TEST NVIDIA Reference Value GH100 CA",
        "TEST NVIDIA Reference Value L3 GH100",
        serial=11,
    )
    return FakeNvidia(
        root_key,
        root,
        identity_key,
        identity,
        ica_key,
        ica,
        rim_root_key,
        rim_root,
        rim_ca_key,
        rim_ca,
        rim_l3_key,
        rim_l3,
    )


@cache
def rim_signer() -> Device:
    """The one RIM signer whose re-signed RIMs most tests use (cached with the PKI)."""
    return fake_nvidia().rim_signer()


@cache
def resigned_rims(*rims: bytes) -> tuple[bytes, ...]:
    """Real RIMs re-signed by :func:`rim_signer` (cached: XML-DSig signing is the slow part)."""
    pki = fake_nvidia()
    return tuple(pki.sign_rim(rim, rim_signer()) for rim in rims)


def resign(template: bytes, device: Device, nonce: bytes) -> bytes:
    """The template report with requester nonce ``nonce``, FWID set to the device leaf's, signed by its leaf."""
    report = parse_report(template)
    signed = bytearray(report.signed)
    signed[4:36] = nonce
    if report.opaque_value(FIELD_FWID) is not None:
        old = report.opaque_value(FIELD_FWID)
        assert old is not None
        at = bytes(signed).rindex(old)
        signed[at : at + len(old)] = device.fwid
    der = device.keys[0].sign(bytes(signed), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    assert len(signature) == SIGNATURE_LENGTH
    return bytes(signed) + signature


def ocsp_target(device: Device, index: int, root: x509.Certificate) -> str:
    """The path (after the responder base URL) the broker requests for device.certs[index]."""
    cert = device.certs[index]
    issuer = device.certs[index + 1] if index + 1 < len(device.certs) else (device.root or root)
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA384()).build()
    return "/" + base64.urlsafe_b64encode(request.public_bytes(serialization.Encoding.DER)).decode()


__all__ = ["Device", "FakeNvidia", "fake_nvidia", "ocsp_target", "resign", "resigned_rims", "rim_signer", "timedelta"]
