"""Shared helpers for the SNP tests: real-vector table, contexts, and a TEST-ONLY AMD-shaped hierarchy.

The fake hierarchy (its own ARK/ASK/ASVK, VCEKs and CRLs, RSA-PSS like AMD's) exists only to reach
checks that real vectors cannot (chip-id/TCB mismatch after a valid signature, a revoked ASK, a Turin
report); it is injected through ``trust=`` and never touches the pinned roots.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from attestation_broker.evidence.snp.checks import AmdTrust
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.vectors import vector

MILAN_CRL = "roots/amd/amd_milan_vcek_crl.pem"
GENOA_CRL = "roots/amd/amd_genoa_vcek_crl.pem"


def at(day: str) -> datetime:
    return datetime.fromisoformat(day + "T00:00:00+00:00")


@dataclass(frozen=True)
class Case:
    name: str
    report: str  # vector path of the raw report
    certs: tuple[str, ...]
    crl: str
    now: str
    product: str
    signing_key: str
    version: int
    vmpl: int
    measurement_prefix: str
    debug: bool = False


CASES = (
    Case(
        "SNP-D1",
        "snp/go-sev-guest-milan-v2/attestation.bin",
        ("snp/go-sev-guest-milan-v2/vcek.testcer",),
        MILAN_CRL,
        "2025-06-01",
        "Milan",
        "vcek",
        2,
        0,
        "b07af962",
        debug=True,
    ),
    Case(
        "SNP-D2",
        "snp/trustee-milan-v2/test-report.bin",
        ("snp/trustee-milan-v2/test-vcek.der",),
        MILAN_CRL,
        "2025-06-01",
        "Milan",
        "vcek",
        2,
        0,
        "a1f39304",
    ),
    Case(
        "SNP-D3",
        "snp/trustee-aws-vlek-milan-v3/test-vlek-report.bin",
        ("snp/trustee-aws-vlek-milan-v3/test-vlek.der",),
        MILAN_CRL,
        "2025-06-01",
        "Milan",
        "vlek",
        3,
        1,
        "8922ebbd",
    ),
    Case(
        "SNP-D4",
        "snp/trustee-azure-milan-hcl/snp-report.derived.bin",
        ("snp/trustee-azure-milan-hcl/vcek.pem",),
        MILAN_CRL,
        "2025-06-01",
        "Milan",
        "vcek",
        2,
        0,
        "9ac48fca",
    ),
    Case(
        "SNP-D5",
        "snp/trustee-azure-genoa-hcl/snp-report.derived.bin",
        ("snp/trustee-azure-genoa-hcl/vcek-genoa.pem",),
        GENOA_CRL,
        "2025-06-01",
        "Genoa",
        "vcek",
        3,
        0,
        "f57dc09a",
    ),
    Case(
        "SNP-D6a",
        "snp/teekit-gcp-milan-v5/sev-gcp.bin",
        ("snp/teekit-gcp-milan-v5/sev-gcp-vcek.pem",),
        MILAN_CRL,
        "2026-01-01",
        "Milan",
        "vcek",
        5,
        0,
        "b747d554",
    ),
    Case(
        "SNP-D6b",
        "snp/teekit-gcp-milan-v5/sev-gcp-reportdata.bin",
        ("snp/teekit-gcp-milan-v5/sev-gcp-x25519-vcek.pem",),
        MILAN_CRL,
        "2026-01-01",
        "Milan",
        "vcek",
        5,
        1,
        "b747d554",
    ),
    Case(
        "SNP-D6c",
        "snp/teekit-gcp-milan-v5/sev-gcp-x25519-bound.bin",
        ("snp/teekit-gcp-milan-v5/sev-gcp-vcek.pem",),
        MILAN_CRL,
        "2026-01-01",
        "Milan",
        "vcek",
        5,
        1,
        "b747d554",
    ),
)
CASE_BY_NAME = {c.name: c for c in CASES}
V4_REPORT = "snp/openpcc-gce-milan-v4/snp-report.derived.bin"


def pem_to_der_crl(pem: bytes) -> bytes:
    return x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER)


# --- Azure HCL reports (tests/vectors/azure): the SNP report sits at HCL offset 0x20 ---------------------


def hcl_carve(hcl: bytes) -> bytes:
    assert hcl[:4] == b"HCLA"
    return hcl[0x20 : 0x20 + 0x4A0]


def azure_cases() -> list[tuple[str, bytes, list[bytes]]]:
    out = [
        (
            "az-911B0EF8",
            hcl_carve(vector("azure/az-snp-hcl-report-911B0EF8.bin")),
            [vector("azure/az-snp-vcek-chain-911B0EF8.pem")],
        ),
        (
            "az-D3A9B6BE",
            hcl_carve(vector("azure/az-snp-hcl-report-D3A9B6BE.bin")),
            [vector("azure/az-snp-vcek-D3A9B6BE.pem")],
        ),
    ]
    v0 = json.loads(vector("azure/az-snp-vtpm-evidence-v0-26F8BC30.json"))
    out.append(("az-26F8BC30-v0", hcl_carve(bytes(v0["report"])), [v0["vcek"].encode()]))
    v1 = json.loads(vector("azure/az-snp-vtpm-evidence-v1-26F8BC30.json"))
    out.append(
        (
            "az-26F8BC30-v1",
            hcl_carve(base64.urlsafe_b64decode(v1["hcl_report"])),
            [base64.urlsafe_b64decode(v1["vcek"])],
        )
    )
    genoa = json.loads(vector("azure/az-snp-vtpm-evidence-genoa-390CBCF5.json"))
    out.append(("az-390CBCF5-genoa", hcl_carve(bytes(genoa["report"])), [genoa["vcek"].encode()]))
    return out


# --- TEST-ONLY hierarchy -------------------------------------------------------------------------------

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
AMD_OID = "1.3.6.1.4.1.3704.1"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST ONLY")]
    )


def _der_int(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return bytes([0x02, len(body)]) + body


def _ia5(s: str) -> bytes:
    return bytes([0x16, len(s)]) + s.encode()


@dataclass(frozen=True)
class FakeAmd:
    product: str
    ark_key: rsa.RSAPrivateKey
    ark: x509.Certificate
    ask_key: rsa.RSAPrivateKey
    ask: x509.Certificate
    trust: AmdTrust

    def vcek(
        self,
        chip_id: bytes,
        tcb: dict[str, int],
        *,
        issuer_key: rsa.RSAPrivateKey | None = None,
        issuer: x509.Certificate | None = None,
        not_after: datetime | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        product_name: str | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
        key = key or ec.generate_private_key(ec.SECP384R1())
        issuer = issuer or self.ask
        turin = self.product == "Turin"
        exts = [
            (f"{AMD_OID}.1", _der_int(1 if turin else 0)),
            (f"{AMD_OID}.2", _ia5(product_name or self.product)),
            (f"{AMD_OID}.3.1", _der_int(tcb["bootloader"])),
            (f"{AMD_OID}.3.2", _der_int(tcb["tee"])),
            (f"{AMD_OID}.3.3", _der_int(tcb["snp"])),
            (f"{AMD_OID}.3.8", _der_int(tcb["microcode"])),
            (f"{AMD_OID}.4", chip_id[:8] if turin else chip_id),
        ]
        if turin:
            exts.append((f"{AMD_OID}.3.9", _der_int(tcb["fmc"])))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("SEV-VCEK"))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
            .not_valid_after(not_after or datetime(2031, 1, 1, tzinfo=UTC))
        )
        for oid, value in exts:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
            )
        cert = builder.sign(issuer_key or self.ask_key, hashes.SHA384(), rsa_padding=PSS)
        return key, cert.public_bytes(serialization.Encoding.DER)

    def crl(
        self,
        revoked: tuple[int, ...] = (),
        *,
        last: datetime | None = None,
        nxt: datetime | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.ark.subject)
            .last_update(last or datetime(2025, 1, 1, tzinfo=UTC))
            .next_update(nxt or datetime(2026, 1, 1, tzinfo=UTC))
        )
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(datetime(2024, 6, 1, tzinfo=UTC))
                .build()
            )
        return builder.sign(key or self.ark_key, hashes.SHA384(), rsa_padding=PSS).public_bytes(
            serialization.Encoding.DER
        )

    def intermediate(self, cn: str, serial: int) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
        return _intermediate(self.ark_key, self.ark, cn, serial)


_CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)


def _intermediate(
    ark_key: rsa.RSAPrivateKey, ark: x509.Certificate, cn: str, serial: int
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(65537, 2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ark.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime(2023, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        # Like AMD's ASK/ASVK: a CA that may sign certificates and CRLs, no CA below it.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(ark_key, hashes.SHA384(), rsa_padding=PSS)
    )
    return key, cert


@cache
def fake_amd(product: str = "Turin") -> FakeAmd:
    ark_key = rsa.generate_private_key(65537, 2048)
    ark = (
        x509.CertificateBuilder()
        .subject_name(_name(f"ARK-{product}"))
        .issuer_name(_name(f"ARK-{product}"))
        .public_key(ark_key.public_key())
        .serial_number(0x30000)
        .not_valid_before(datetime(2023, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        # Like AMD's ARKs: basicConstraints cA without a path length, keyCertSign + cRLSign.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(ark_key, hashes.SHA384(), rsa_padding=PSS)
    )
    ask_key, ask = _intermediate(ark_key, ark, f"SEV-{product}", 0x30001)
    pem = ask.public_bytes(serialization.Encoding.PEM) + ark.public_bytes(serialization.Encoding.PEM)
    trust = AmdTrust.from_pems({product: (pem, None)})
    return FakeAmd(product, ark_key, ark, ask_key, ask, trust)


CPUID = {"Milan": (0x19, 0x01), "Genoa": (0x19, 0x11), "Turin": (0x1A, 0x02)}


def build_report(
    key: ec.EllipticCurvePrivateKey,
    *,
    product: str = "Turin",
    version: int = 5,
    chip_id: bytes = bytes(range(8)) + bytes(56),
    tcb: dict[str, int] | None = None,
    report_data: bytes = bytes(64),
    policy: int = 0x30000,
    vmpl: int = 0,
    signing_key: int = 0,
    measurement: bytes = b"\x11" * 48,
) -> bytes:
    """A synthetic, correctly signed ATTESTATION_REPORT (TEST ONLY)."""
    tcb = tcb or {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 5}
    if product == "Turin":
        tcb_raw = bytes([tcb["fmc"], tcb["bootloader"], tcb["tee"], tcb["snp"], 0, 0, 0, tcb["microcode"]])
    else:
        tcb_raw = bytes([tcb["bootloader"], tcb["tee"], 0, 0, 0, 0, tcb["snp"], tcb["microcode"]])
    r = bytearray(0x4A0)
    struct.pack_into("<IIQ", r, 0, version, 0, policy)
    struct.pack_into("<II", r, 0x30, vmpl, 1)
    r[0x38:0x40] = tcb_raw
    struct.pack_into("<QI", r, 0x40, 0x1, signing_key << 2)
    r[0x50:0x90] = report_data
    r[0x90:0xC0] = measurement
    r[0x180:0x188] = tcb_raw
    if version >= 3:
        r[0x188], r[0x189], r[0x18A] = *CPUID[product], 1
    r[0x1A0:0x1E0] = chip_id
    r[0x1E0:0x1E8] = tcb_raw
    r[0x1E8:0x1EB] = bytes([1, 55, 1])
    r[0x1F0:0x1F8] = tcb_raw
    if version >= 5:
        struct.pack_into("<QQ", r, 0x1F8, 0xB, 0xB)
    der = key.sign(bytes(r[:0x2A0]), ec.ECDSA(hashes.SHA384()))
    sig_r, sig_s = decode_dss_signature(der)
    r[0x2A0:0x2E8] = sig_r.to_bytes(72, "little")
    r[0x2E8:0x330] = sig_s.to_bytes(72, "little")
    return bytes(r)


def sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


__all__ = ["CASES", "at", "build_report", "fake_amd", "timedelta"]
