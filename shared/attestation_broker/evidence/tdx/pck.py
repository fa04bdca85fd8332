"""PCK certificate chain and the Intel SGX PCK certificate extensions.

Implements Intel "SGX PCK Certificate and Certificate Revocation List Profile Specification":
the chain PCK leaf → Intel SGX PCK Platform CA | Processor CA → Intel SGX Root CA, and the SGX
extensions (OID 1.2.840.113741.1.13.1): TCB (.2; components .2.1–.2.16, PCESVN .2.17, CPUSVN .2.18),
PCE-ID (.3), FMSPC (.4), SGX type (.5). Path validation is the shared path builder's
(:mod:`attestation_broker.trust.chain`); validity periods are checked on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attestation_broker.errors import CERT_CHAIN_INVALID
from attestation_broker.evidence.common import LruMemo, require_valid_at
from attestation_broker.evidence.tdx.errors import TDX_CERT_DATA_INVALID, TDX_PCK_EXTENSIONS_INVALID
from attestation_broker.evidence.tdx.trust import TdxTrust
from attestation_broker.trust.chain import Same, verify_path
from attestation_broker.trust.x509 import parse_pem_certificates

SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1"
PLATFORM_CA_CN = "Intel SGX PCK Platform CA"
PROCESSOR_CA_CN = "Intel SGX PCK Processor CA"


@dataclass(frozen=True)
class PckExtensions:
    fmspc: bytes  # 6 bytes
    pce_id: bytes  # 2 bytes
    pce_svn: int
    cpu_svn: bytes  # 16 bytes
    components: tuple[int, ...]  # 16 SGX TCB component SVNs
    sgx_type: int


@dataclass(frozen=True)
class PckChain:
    """A PCK chain whose signatures verified up to the pinned root (validity is checked per use)."""

    leaf: x509.Certificate
    intermediate: x509.Certificate
    ca: str  # "platform" | "processor"
    extensions: PckExtensions
    leaf_key: ec.EllipticCurvePublicKey


# --- minimal DER reader for the SGX extension (a SEQUENCE of (OID, value) pairs) -------------------


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Return (tag, content, next position); raise on anything malformed."""
    if pos + 2 > len(data):
        raise ValueError("truncated TLV")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 3 or pos + n > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise ValueError("truncated content")
    return tag, data[pos : pos + length], pos + length


def _children(content: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos < len(content):
        tag, value, pos = _tlv(content, pos)
        out.append((tag, value))
    return out


def _oid(content: bytes) -> str:
    if not content:
        raise ValueError("empty OID")
    parts = [str(min(content[0] // 40, 2)), str(content[0] - 40 * min(content[0] // 40, 2))]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(str(value))
            value = 0
    return ".".join(parts)


def _int(content: bytes) -> int:
    if not content or len(content) > 4:
        raise ValueError("bad INTEGER")
    return int.from_bytes(content, "big", signed=True)


def _pairs(content: bytes) -> dict[str, tuple[int, bytes]]:
    """SEQUENCE OF SEQUENCE { OID, value } → {oid: (tag, value)}; duplicates are malformed."""
    out: dict[str, tuple[int, bytes]] = {}
    for tag, item in _children(content):
        if tag != 0x30:
            raise ValueError("expected SEQUENCE")
        members = _children(item)
        if len(members) != 2 or members[0][0] != 0x06:
            raise ValueError("expected (OID, value)")
        oid = _oid(members[0][1])
        if oid in out:
            raise ValueError("duplicate OID")
        out[oid] = members[1]
    return out


@lru_cache(maxsize=256)
def parse_sgx_extensions(cert: x509.Certificate) -> PckExtensions:
    """Decode the SGX extensions of a PCK leaf (raises TDX_PCK_EXTENSIONS_INVALID).

    Memoized by the certificate (parsed certificates are themselves memoized by their DER): the same object for a
    platform's every quote keeps the TCB evaluation memo of the pipeline, keyed by identity, effective.
    """
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSIONS_OID))
    except x509.ExtensionNotFound:
        raise TDX_PCK_EXTENSIONS_INVALID("PCK certificate has no SGX extensions") from None
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    base = SGX_EXTENSIONS_OID
    try:
        tag, content, end = _tlv(raw, 0)
        if tag != 0x30 or end != len(raw):
            raise ValueError("not a SEQUENCE")
        top = _pairs(content)
        tcb_tag, tcb = top[f"{base}.2"]
        if tcb_tag != 0x30:
            raise ValueError("TCB is not a SEQUENCE")
        comps = _pairs(tcb)
        components = tuple(_int(comps[f"{base}.2.{i}"][1]) for i in range(1, 17))
        pce_svn = _int(comps[f"{base}.2.17"][1])
        cpu_svn = comps[f"{base}.2.18"][1]
        fmspc = top[f"{base}.4"][1]
        pce_id = top[f"{base}.3"][1]
        sgx_type = _int(top[f"{base}.5"][1])
    except (ValueError, KeyError):
        raise TDX_PCK_EXTENSIONS_INVALID("PCK SGX extensions are malformed") from None
    if len(fmspc) != 6 or len(pce_id) != 2 or len(cpu_svn) != 16 or any(not 0 <= c <= 255 for c in components):
        raise TDX_PCK_EXTENSIONS_INVALID("PCK SGX extension field has the wrong size")
    return PckExtensions(fmspc, pce_id, pce_svn, cpu_svn, components, sgx_type)


# --- chain ------------------------------------------------------------------------------------------

# The tallest genuine PCK chain: leaf, PCK CA, root.
MAX_DEPTH = 3


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def check_validity(cert: x509.Certificate, now: datetime, what: str, skew: timedelta = timedelta(0)) -> None:
    require_valid_at(cert, now, f"{what} certificate is outside its validity period", skew=skew)


def verify_pck_chain(pem: bytes, trust: TdxTrust, now: datetime, skew: timedelta = timedelta(0)) -> PckChain:
    """Verify the quote's PCK chain to the pinned root at ``now`` (± ``skew``).

    The Intel profile (two or three certificates, the chain's own root is the pinned one if present, the issuer
    is the Platform or Processor CA, a P-256 leaf key) is checked here; signatures, CA basic constraints and
    keyUsage, path length and "leaf is not a CA" by the shared path builder
    (:func:`attestation_broker.trust.chain.verify_path`). Intel's real chains in tests/vectors/tdx satisfy its
    policies unrelaxed. Checks run in this order: names, validity at ``now``, signatures and path, CA and key.

    Everything but the validity periods depends only on the PEM bytes and the pinned root, so a chain that passed
    is memoized by both (name comparisons, the path memo's key, the CA's common name, the leaf key and its SGX
    extensions were a third of a warm TDX verification beside its two signatures): a repeated chain costs the three
    validity checks at ``now``, which are what the full sequence could still refuse it for. A chain that failed is
    never memoized.
    """
    pem = bytes(pem)
    chain = _chains.get((pem, Same(trust.root)), partial(_verify, pem, trust, now, skew))
    check_validity(trust.root, now, "Intel SGX Root CA", skew)
    check_validity(chain.intermediate, now, "PCK CA", skew)
    check_validity(chain.leaf, now, "PCK", skew)
    return chain


_chains = LruMemo(1024)  # (PEM bytes, pinned root) → PckChain that passed every time-independent check


def _verify(pem: bytes, trust: TdxTrust, now: datetime, skew: timedelta) -> PckChain:
    leaf, intermediate = _names(pem, trust)
    check_validity(trust.root, now, "Intel SGX Root CA", skew)
    check_validity(intermediate, now, "PCK CA", skew)
    check_validity(leaf, now, "PCK", skew)
    path = verify_path(leaf, [intermediate], [trust.root], now=now, skew=skew, max_depth=MAX_DEPTH, what="PCK chain")
    if len(path) != 3 or path[1] != intermediate:
        raise CERT_CHAIN_INVALID("PCK chain does not verify to the pinned Intel SGX Root CA")
    return _profile(leaf, intermediate)


def _names(pem: bytes, trust: TdxTrust) -> tuple[x509.Certificate, x509.Certificate]:
    try:
        certs = parse_pem_certificates(pem)
    except ValueError:
        raise TDX_CERT_DATA_INVALID("PCK chain does not decode as PEM certificates") from None
    if len(certs) not in (2, 3):
        raise CERT_CHAIN_INVALID(f"PCK chain has {len(certs)} certificates (expected leaf, CA[, root])")
    leaf, intermediate = certs[0], certs[1]
    if len(certs) == 3 and certs[2] != trust.root:
        # The chain's own root is never trusted; it must be the pinned one if present at all.
        raise CERT_CHAIN_INVALID("PCK chain ends in a root that is not the pinned Intel SGX Root CA")
    if leaf.issuer != intermediate.subject or intermediate.issuer != trust.root.subject:
        # Name chaining before time: a certificate from another chain is a chain error, whatever its dates.
        raise CERT_CHAIN_INVALID("PCK chain does not verify to the pinned Intel SGX Root CA")
    return leaf, intermediate


def _profile(leaf: x509.Certificate, intermediate: x509.Certificate) -> PckChain:
    ca_cn = _cn(intermediate.subject)
    if ca_cn == PLATFORM_CA_CN:
        ca = "platform"
    elif ca_cn == PROCESSOR_CA_CN:
        ca = "processor"
    else:
        raise CERT_CHAIN_INVALID("PCK issuer is neither the Platform CA nor the Processor CA")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CERT_CHAIN_INVALID("PCK key is not ECDSA P-256")
    return PckChain(leaf, intermediate, ca, parse_sgx_extensions(leaf), key)
