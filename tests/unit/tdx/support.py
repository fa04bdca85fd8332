"""Shared helpers for the TDX tests: vectors, contexts, replayed Intel PCS, and a test-only PKI.

The test PKI mimics Intel's (root → "Intel SGX PCK Platform CA" → PCK leaf with SGX extensions, root →
TCB Signing) with freshly generated keys. It is injected only through ``verify_tdx_evidence(trust=...)``;
nothing here touches the product's pinned roots.
"""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from attestation_broker.evidence.tdx import TdxCollateral, TdxTrust
from attestation_broker.evidence.tdx.abi import parse_quote
from attestation_broker.evidence.tdx.pcs import SignedJson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.replay import ReplayServer, Reply
from tests.support.vectors import vector

C1 = "tdx/collateral-tinfoil-2026-01/"
NOW_C1 = datetime(2026, 2, 1, tzinfo=UTC)  # inside every TDX-C1 window and after the D2/D7 PCK notBefore
NOW_D6 = datetime(2025, 7, 1, tzinfo=UTC)
NOW_D7 = datetime(2026, 3, 1, tzinfo=UTC)

QUOTES = {
    "D1": "tdx/go-tdx-guest-spr-v4/tdx_prod_quote_SPR_E4.dat",
    "D2": "tdx/go-tdx-guest-v5-tdx15/quote_v5_sample.dat",
    "D3": "tdx/go-tdx-guest-gcp-cos113/cos-113-tdx-quote.dat",
    "D4": "tdx/trustee-spr-v4/tdx_quote_4.dat",
    "D5": "tdx/trustee-azure-td-quote/td-quote.bin",
    "D6": "tdx/dcap-qvl-b0c06f-v4/tdx_quote",
    "D6hex": "tdx/dcap-qvl-b0c06f-v4/tdx-quote.hex",
    "D7": "tdx/dcap-qvl-90c06f-v5-outdated/tdx_quote_outdated",
    "D8": "tdx/openpcc-azure-dcesv6/td-quote.derived.bin",
}


def quote_bytes(name: str) -> bytes:
    data = vector(QUOTES[name])
    if name.endswith("hex"):
        return bytes.fromhex(data.decode().strip().removeprefix("0x"))
    return data


def dcap_json(name: str) -> str:
    path = {
        "D6": "tdx/dcap-qvl-b0c06f-v4/tdx_quote_collateral.json",
        "D7": "tdx/dcap-qvl-90c06f-v5-outdated/tdx_quote_outdated_collateral.json",
    }[name]
    return vector(path).decode()


def dcap_collateral(name: str) -> TdxCollateral:
    return TdxCollateral.from_dcap_qvl_json(dcap_json(name))


def c1_bodies(fmspc: str = "90c06f000000") -> dict[str, bytes]:
    return {
        "tcb_info": vector(f"{C1}tcb_info_{fmspc}.json"),
        "qe_identity": vector(f"{C1}qe_identity.json"),
        "pck_crl": vector(f"{C1}pck_crl_platform.crl"),
        "root_crl": vector(f"{C1}root_ca.crl"),
    }


def c1_chains(fmspc: str = "90c06f000000") -> dict[str, str]:
    """The recorded PCS issuer-chain header values (URL-encoded PEM, exactly as sent)."""
    return {
        "tcb_info": vector(f"{C1}tcb_info_{fmspc}_chain.txt").decode().strip(),
        "qe_identity": vector(f"{C1}qe_identity_chain.txt").decode().strip(),
        "pck_crl": vector(f"{C1}pck_crl_platform_chain.txt").decode().strip(),
    }


def c1_collateral(fmspc: str = "90c06f000000") -> TdxCollateral:
    b = c1_bodies(fmspc)
    chains = {k: urllib.parse.unquote(v).encode() for k, v in c1_chains(fmspc).items()}
    return TdxCollateral.from_pcs_bodies(
        b["tcb_info"],
        b["qe_identity"],
        b["pck_crl"],
        b["root_crl"],
        tcb_info_issuer_chain=chains["tcb_info"],
        qe_identity_issuer_chain=chains["qe_identity"],
        pck_crl_issuer_chain=chains["pck_crl"],
    )


CHAIN_HEADERS = {
    "tcb_info": "TCB-Info-Issuer-Chain",
    "qe_identity": "SGX-Enclave-Identity-Issuer-Chain",
    "pck_crl": "SGX-PCK-CRL-Issuer-Chain",
}


def serve(
    replay: ReplayServer,
    fmspc: str,
    bodies: dict[str, bytes],
    ca: str = "platform",
    chains: dict[str, str] | None = None,
) -> None:
    """Serve PCS routes with their issuer-chain headers (``chains``: header values; default the C1 chains)."""
    chains = c1_chains() if chains is None else chains
    targets = {
        "tcb_info": f"/tdx/certification/v4/tcb?fmspc={fmspc.upper()}",
        "qe_identity": "/tdx/certification/v4/qe/identity",
        "pck_crl": f"/sgx/certification/v4/pckcrl?ca={ca}&encoding=der",
        "root_crl": "/sgx/certification/v4/rootcacrl",
    }
    for kind, target in targets.items():
        headers = {CHAIN_HEADERS[kind]: chains[kind]} if kind in chains else {}
        replay.routes[target] = Reply(bodies[kind], 200, headers)


def pcs_routes(col: TdxCollateral, fmspc: str, ca: str = "platform") -> dict[str, Reply]:
    """What a PCS stand-in serves for ``col``: PCS bodies composed from the pairs, issuer chains as headers."""

    def body(key: str, pair: SignedJson) -> bytes:
        return pcs_body(key, pair.signed.decode(), pair.signature.hex())

    def header(name: str, pem: bytes | None) -> dict[str, str]:
        return {name: urllib.parse.quote((pem or b"").decode(), safe="")} if pem else {}

    return {
        f"/tdx/certification/v4/tcb?fmspc={fmspc.upper()}": Reply(
            body("tcbInfo", col.tcb_info), 200, header(CHAIN_HEADERS["tcb_info"], col.tcb_info_issuer_chain)
        ),
        "/tdx/certification/v4/qe/identity": Reply(
            body("enclaveIdentity", col.qe_identity),
            200,
            header(CHAIN_HEADERS["qe_identity"], col.qe_identity_issuer_chain),
        ),
        f"/sgx/certification/v4/pckcrl?ca={ca}&encoding=der": Reply(
            col.pck_crl, 200, header(CHAIN_HEADERS["pck_crl"], col.pck_crl_issuer_chain)
        ),
        "/sgx/certification/v4/rootcacrl": Reply(col.root_crl),
    }


def chain_header(*certs: x509.Certificate) -> str:
    """A PCS issuer-chain header value (URL-encoded PEM) for ``certs``."""
    return urllib.parse.quote(b"".join(_pem(c) for c in certs).decode(), safe="")


def pcs_body(key: str, inner: str, signature_hex: str) -> bytes:
    return ('{"' + key + '":' + inner + ',"signature":"' + signature_hex + '"}').encode()


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


# --- test-only PKI ----------------------------------------------------------------------------------

SGX_OID = "1.2.840.113741.1.13.1"


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(content)) + content


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out.extend(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _int(v: int) -> bytes:
    raw = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return _tlv(0x02, raw)


def sgx_extension(fmspc: bytes, components: tuple[int, ...], pce_svn: int, pce_id: bytes = b"\x00\x00") -> bytes:
    b = SGX_OID
    tcb = b"".join(_tlv(0x30, _oid(f"{b}.2.{i + 1}") + _int(c)) for i, c in enumerate(components))
    tcb += _tlv(0x30, _oid(f"{b}.2.17") + _int(pce_svn))
    tcb += _tlv(0x30, _oid(f"{b}.2.18") + _tlv(0x04, bytes(components)))
    items = [
        _tlv(0x30, _oid(f"{b}.1") + _tlv(0x04, bytes(16))),
        _tlv(0x30, _oid(f"{b}.2") + _tlv(0x30, tcb)),
        _tlv(0x30, _oid(f"{b}.3") + _tlv(0x04, pce_id)),
        _tlv(0x30, _oid(f"{b}.4") + _tlv(0x04, fmspc)),
        _tlv(0x30, _oid(f"{b}.5") + _tlv(0x0A, b"\x00")),
    ]
    return _tlv(0x30, b"".join(items))


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test")]
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    extension: bytes | None = None,
    not_before: datetime = datetime(2018, 1, 1, tzinfo=UTC),
    not_after: datetime = datetime(2049, 1, 1, tzinfo=UTC),
    serial: int | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # keyUsage like Intel's real certificates: keyCertSign + cRLSign on CAs, digitalSignature on leaves.
        .add_extension(
            x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False),
            critical=True,
        )
    )
    if extension is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_OID), extension), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _raw_sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeIntelPki:
    """A generated Intel-shaped PKI. ``forge`` rebuilds a real quote signed by these keys."""

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    signing_key: ec.EllipticCurvePrivateKey
    signing: x509.Certificate

    @classmethod
    def create(cls) -> FakeIntelPki:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert("Intel SGX Root CA", root_key, "Intel SGX Root CA", root_key, ca=True)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("Intel SGX PCK Platform CA", ca_key, "Intel SGX Root CA", root_key, ca=True)
        signing_key = ec.generate_private_key(ec.SECP256R1())
        signing = _cert("Intel SGX TCB Signing", signing_key, "Intel SGX Root CA", root_key, ca=False)
        return cls(root_key, root, ca_key, ca, signing_key, signing)

    @property
    def trust(self) -> TdxTrust:
        return TdxTrust(root=self.root)

    def rotate_signing(self) -> None:
        """Intel rotates its TCB Signing certificate: a new key and certificate under the same root."""
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self.signing = _cert("Intel SGX TCB Signing", self.signing_key, "Intel SGX Root CA", self.root_key, ca=False)

    @property
    def signing_chain(self) -> bytes:
        return _pem(self.signing) + _pem(self.root)

    def leaf(
        self, fmspc: bytes, components: tuple[int, ...], pce_svn: int, **kw: Any
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        ext = sgx_extension(fmspc, components, pce_svn)
        return key, _cert(
            "Intel SGX PCK Certificate", key, "Intel SGX PCK Platform CA", self.ca_key, ca=False, extension=ext, **kw
        )

    def forge(
        self,
        real: bytes,
        *,
        body_patch: dict[int, bytes] | None = None,
        qe_patch: dict[int, bytes] | None = None,
        fmspc: bytes | None = None,
        components: tuple[int, ...] | None = None,
        pce_svn: int | None = None,
        leaf: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
        chain_pem: bytes | None = None,
    ) -> bytes:
        """Rebuild ``real`` with a new attestation key, QE report and PCK leaf from this PKI.

        ``body_patch`` / ``qe_patch`` map offsets (in the TD body / QE report) to replacement bytes.
        """
        from attestation_broker.evidence.tdx.pck import parse_sgx_extensions

        q = parse_quote(real)
        real_leaf = x509.load_pem_x509_certificates(q.pck_chain_pem)[0]
        ext = parse_sgx_extensions(real_leaf)
        if leaf is None:
            leaf = self.leaf(
                fmspc or ext.fmspc,
                components or ext.components,
                ext.pce_svn if pce_svn is None else pce_svn,
            )
        leaf_key, leaf_cert = leaf
        body_off = len(q.signed) - (648 if q.body_type == 3 else 584)
        signed = bytearray(q.signed)
        for off, patch in (body_patch or {}).items():
            signed[body_off + off : body_off + off + len(patch)] = patch
        ak = ec.generate_private_key(ec.SECP256R1())
        ak_raw = ak.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )[1:]
        qe = bytearray(q.qe_report.raw)
        for off, patch in (qe_patch or {}).items():
            qe[off : off + len(patch)] = patch
        qe[320:384] = hashlib.sha256(ak_raw + q.qe_auth_data).digest() + bytes(32)
        pem = chain_pem if chain_pem is not None else _pem(leaf_cert) + _pem(self.ca) + _pem(self.root)
        inner = struct.pack("<HI", 5, len(pem)) + pem
        cert_data = (
            bytes(qe) + _raw_sign(leaf_key, bytes(qe)) + struct.pack("<H", len(q.qe_auth_data)) + q.qe_auth_data + inner
        )
        sig_data = _raw_sign(ak, bytes(signed)) + ak_raw + struct.pack("<HI", 6, len(cert_data)) + cert_data
        return bytes(signed) + struct.pack("<I", len(sig_data)) + sig_data

    def sign_json(self, key: str, inner: dict[str, Any] | str) -> bytes:
        text = inner if isinstance(inner, str) else json.dumps(inner, separators=(",", ":"))
        return pcs_body(key, text, _raw_sign(self.signing_key, text.encode()).hex())

    def crl(
        self, issuer: str, *, revoked: tuple[int, ...] = (), this: datetime = NOW_C1 - timedelta(days=5), days: int = 30
    ) -> bytes:
        key, cert = (self.root_key, self.root) if issuer == "root" else (self.ca_key, self.ca)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(cert.subject)
            .last_update(this)
            .next_update(this + timedelta(days=days))
        )
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(this).build()
            )
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def collateral(
        self,
        tcb_info: dict[str, Any],
        qe_identity: dict[str, Any],
        *,
        pck_revoked: tuple[int, ...] = (),
        root_revoked: tuple[int, ...] = (),
    ) -> TdxCollateral:
        return TdxCollateral.from_pcs_bodies(
            self.sign_json("tcbInfo", tcb_info),
            self.sign_json("enclaveIdentity", qe_identity),
            self.crl("ca", revoked=pck_revoked),
            self.crl("root", revoked=root_revoked),
            tcb_info_issuer_chain=self.signing_chain,
            qe_identity_issuer_chain=self.signing_chain,
            pck_crl_issuer_chain=_pem(self.ca) + _pem(self.root),
        )


def c1_json(name: str) -> dict[str, Any]:
    """The inner object of a TDX-C1 PCS body (for re-signing with the test PKI)."""
    doc = json.loads(vector(f"{C1}{name}"))
    key = "tcbInfo" if "tcbInfo" in doc else "enclaveIdentity"
    return dict(doc[key])


def shifted(doc: dict[str, Any], now: datetime, *, issued_days: int = -5, next_days: int = 25) -> dict[str, Any]:
    out = dict(doc)
    out["issueDate"] = (now + timedelta(days=issued_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["nextUpdate"] = (now + timedelta(days=next_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return out
