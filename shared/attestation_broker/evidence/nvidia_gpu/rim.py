"""NVIDIA reference integrity manifests (RIMs): TCG PC Client RIM / ISO 19770-2 SWID tags signed with
XML-DSig (W3C XML Signature 1.1: enveloped signature, C14N 1.1, ECDSA-SHA384, SHA-384 digest).

A RIM names its product (``Meta/@product``, e.g. GH100, LS10) and version (``Meta/@colloquialVersion``:
the driver version, or the VBIOS / switch BIOS version) and lists ``Payload/Resource`` measurements:
``index`` (0-based; RIM index i is SPDM measurement block i + 1), ``active``, ``alternatives`` and the
golden values ``Hash0`` .. ``Hash{alternatives-1}``.

Verification: the ``KeyInfo/X509Data`` certificates (signer first, a copy of the root allowed last) must
chain to the pinned NVIDIA CoRIM signing root; the signature is then checked by ``signxml`` (a maintained
XML-DSig implementation) against that signer certificate, and the measurements are read only from the
XML ``signxml`` returns as signed, never from the input tree. Every certificate of the signer chain must be
valid at ``now`` with the configured clock skew (the shared :func:`~attestation_broker.trust.chain.require_valid`);
RIM signer certificates live two years and expire while RIMs are still in use, so an expired one is
COLLATERAL_EXPIRED (stale reference values), not a chain fault.

The signer chain is checked by the shared hand-written walker
(:func:`attestation_broker.trust.chain.verify_ordered_path`: names chain, signatures, basicConstraints cA and
keyUsage keyCertSign on every CA, path length, depth, leaf not a CA — the same rules as every kind), not by
cryptography's path builder: NVIDIA's "Reference Value" CAs (GH100 CA, LS10 CA, L3 GH100 001/002, L3 LS10 001)
encode validity dates before 2050 as GeneralizedTime, against RFC 5280 §4.1.2.5, and cryptography's verifier
refuses them with no option to relax it. That encoding is the one deliberate deviation tolerated here; the
extension rules are not relaxed (every real RIM chain in tests/vectors/nvidia passes them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from attestation_broker.errors import CERT_EXPIRED, COLLATERAL_EXPIRED, BrokerError
from attestation_broker.evidence.common import LruMemo
from attestation_broker.trust.chain import require_valid, verify_ordered_path
from attestation_broker.trust.x509 import load_certificate

from .checks import DeviceChain, below_root
from .errors import NVIDIA_RIM_MALFORMED, NVIDIA_RIM_SIGNATURE_INVALID
from .trust import fingerprint

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
HASH_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
MAX_RIM_BYTES = 512 * 1024
MAX_SIGNER_DEPTH = 4  # signer (L4), L3 CA, Reference Value CA, CoRIM root: every real RIM chain
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=False)
_CONFIG_ALGS = {
    "signature_methods": frozenset({SignatureMethod.ECDSA_SHA384}),
    "digest_algorithms": frozenset({DigestAlgorithm.SHA384}),
}


@dataclass(frozen=True)
class Golden:
    index: int  # 0-based RIM index
    active: bool
    values: tuple[bytes, ...]


@dataclass(frozen=True)
class Rim:
    product: str
    version: str
    tag_id: str
    measurements: tuple[Golden, ...]
    signer: DeviceChain
    sha256: str

    @property
    def signer_not_after(self) -> datetime:
        return self.signer.leaf.not_valid_after_utc


def looks_like_rim(blob: bytes) -> bool:
    return b"<SoftwareIdentity" in blob[:4096]


def _certificates(root: etree._Element) -> tuple[x509.Certificate, ...]:
    texts = root.findall(
        f".//{{{DSIG_NS}}}Signature/{{{DSIG_NS}}}KeyInfo/{{{DSIG_NS}}}X509Data/{{{DSIG_NS}}}X509Certificate"
    )
    if not texts or len(texts) > 8:
        raise NVIDIA_RIM_MALFORMED("the RIM signature carries no (or too many) X.509 certificates")
    try:
        ders = [base64.b64decode("".join((t.text or "").split()), validate=True) for t in texts]
    except (ValueError, binascii.Error):
        raise NVIDIA_RIM_MALFORMED("a RIM signer certificate is not base64") from None
    return tuple(load_certificate(der, NVIDIA_RIM_MALFORMED, "a RIM signer certificate") for der in ders)


def _measurements(signed: etree._Element) -> tuple[Golden, ...]:
    out: list[Golden] = []
    for resource in signed.iter(f"{{{SWID_NS}}}Resource"):
        if resource.get("type") != "Measurement":
            continue
        try:
            index = int(resource.get("index", ""))
            alternatives = int(resource.get("alternatives", ""))
            active = {"true": True, "false": False}[resource.get("active", "").lower()]
            values = tuple(bytes.fromhex(resource.get(f"{{{HASH_NS}}}Hash{i}", "")) for i in range(alternatives))
        except (ValueError, KeyError):
            raise NVIDIA_RIM_MALFORMED("a RIM measurement is malformed") from None
        if alternatives < 1 or any(len(v) != 48 for v in values) or index < 0:
            raise NVIDIA_RIM_MALFORMED("a RIM measurement has no SHA-384 golden value")
        out.append(Golden(index, active, values))
    if len({g.index for g in out}) != len(out):
        raise NVIDIA_RIM_MALFORMED("a RIM lists a measurement index twice")
    return tuple(out)


_verified = LruMemo(256)  # (RIM SHA-256, root fingerprint) → Rim: signatures checked once per distinct RIM


def verify_rim(data: bytes, root: x509.Certificate, *, now: datetime, skew: timedelta = timedelta(0)) -> Rim:
    """Parse, chain and signature-check one RIM (memoized by its bytes), then its signer chain's validity at
    ``now``; raise a typed error on any failure."""
    if len(data) > MAX_RIM_BYTES:
        raise NVIDIA_RIM_MALFORMED("RIM exceeds the size limit")
    key = (hashlib.sha256(data).hexdigest(), fingerprint(root))
    rim = _verified.get(key, lambda: _verify_signed(data, root))
    try:
        require_valid(rim.signer.path, now, skew, "RIM signer chain")
    except BrokerError as exc:
        if exc.code is not CERT_EXPIRED:
            raise
        raise COLLATERAL_EXPIRED("a RIM signer certificate is outside its validity period") from None
    return rim


def _signer_chain(certs: tuple[x509.Certificate, ...], root: x509.Certificate) -> DeviceChain:
    """The RIM signer chain up to the pinned CoRIM root (time-independent; see the module docstring)."""
    chain = DeviceChain(below_root(certs, root, what="RIM signer"), root)
    verify_ordered_path(chain.path, max_depth=MAX_SIGNER_DEPTH, what="the RIM signer chain")
    return chain


def _verify_signed(data: bytes, root: x509.Certificate) -> Rim:
    """The time-independent part: XML, signer chain signatures, XML-DSig (at a time the signer was valid)."""
    try:
        tree = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError:
        raise NVIDIA_RIM_MALFORMED("RIM is not well-formed XML") from None
    if tree.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise NVIDIA_RIM_MALFORMED("RIM root element is not a SWID SoftwareIdentity")
    signer = _signer_chain(_certificates(tree), root)
    # signxml insists on a verification time for the signer certificate; validity against the real "now" is
    # checked by the caller for the whole chain, so any instant inside the signer's window is right here.
    config = SignatureConfiguration(**_CONFIG_ALGS, verification_time=signer.leaf.not_valid_before_utc)  # type: ignore[arg-type]
    try:
        result = XMLVerifier().verify(data, x509_cert=signer.leaf, expect_config=config)
    except (InvalidDigest, InvalidSignature):
        raise NVIDIA_RIM_SIGNATURE_INVALID() from None
    except (InvalidCertificate, InvalidInput, ValueError, etree.LxmlError):
        raise NVIDIA_RIM_MALFORMED("the RIM signature is not an enveloped XML-DSig signature") from None
    if isinstance(result, list):
        raise NVIDIA_RIM_MALFORMED("the RIM carries more than one signature")
    signed = result.signed_xml
    if signed is None or signed.tag != f"{{{SWID_NS}}}SoftwareIdentity":
        raise NVIDIA_RIM_MALFORMED("the RIM signature does not cover the whole SoftwareIdentity")
    meta = signed.find(f"{{{SWID_NS}}}Meta")
    if meta is None or not meta.get("product") or not meta.get("colloquialVersion"):
        raise NVIDIA_RIM_MALFORMED("the RIM has no Meta product and colloquialVersion")
    return Rim(
        product=str(meta.get("product")),
        version=str(meta.get("colloquialVersion")),
        tag_id=str(signed.get("tagId", "")),
        measurements=_measurements(signed),
        signer=signer,
        sha256=hashlib.sha256(data).hexdigest(),
    )
