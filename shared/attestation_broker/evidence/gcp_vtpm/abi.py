"""Parse a go-tpm-tools ``Attestation`` into frozen values, and re-encode its TEE part in hardware format.

The TEE messages (``sev_snp_attestation``: go-sev-guest ``Attestation``; ``tdx_attestation``: go-tdx-guest
``QuoteV4``) are protobuf renderings of hardware structures. The SNP/TDX verifiers check signatures over
the hardware bytes, so this module rebuilds them exactly (as go-sev-guest ``ReportToAbiBytes`` and
go-tdx-guest ``QuoteToAbiBytes`` do), refusing any field of the wrong size:

- SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP ABI spec 56860, Table 23 "ATTESTATION_REPORT Structure"),
  1184 bytes, little-endian; CPUID family/model/stepping at 0x188..0x18A (report version ≥ 3) are the
  decoded form of ``cpuid1eax_fms``; launch/current mitigation vectors at 0x1F8/0x200 (version ≥ 5).
- Intel TDX quote v4 (Intel TDX DCAP Quoting Library API, App. A): 48-byte header, 584-byte TD quote
  body, u32 signature-data size, ECDSA signature (64), attestation key (64), certification data type 6
  (QE report 384, QE report signature 64, QE auth data u16+bytes, inner certification data type 5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from attestation_broker.evidence.tpm.errors import TPM_PCRS_MALFORMED

from .errors import GCP_VTPM_TEE_MALFORMED
from .proto import decode_attestation

# tpm.HashAlgo → bank names of the TPM core.
HASH_BANKS = {4: "sha1", 11: "sha256", 12: "sha384", 13: "sha512"}


@dataclass(frozen=True)
class GcpQuote:
    attest: bytes
    signature: bytes
    bank: str
    pcrs: dict[int, bytes]


@dataclass(frozen=True)
class InstanceInfo:
    zone: str
    project_id: str
    project_number: int
    instance_name: str
    instance_id: int


@dataclass(frozen=True)
class SnpPart:
    report: bytes  # 1184-byte ATTESTATION_REPORT
    certs: tuple[bytes, ...]  # DER certs carried in certificate_chain (VCEK/VLEK, ASK, ARK, extras)
    product: int  # sevsnp.SevProduct.SevProductName (0 unknown)


@dataclass(frozen=True)
class GcpAttestation:
    ak_pub: bytes
    quotes: tuple[GcpQuote, ...]
    event_log: bytes
    instance_info: InstanceInfo | None
    canonical_event_log: bytes
    ak_cert: bytes
    intermediate_certs: tuple[bytes, ...]
    snp: SnpPart | None
    tdx_quote: bytes | None


def parse_attestation(data: bytes) -> GcpAttestation:
    msg = decode_attestation(data)
    quotes = []
    for q in msg.quotes:
        bank = HASH_BANKS.get(q.pcrs.hash)
        if bank is None:
            raise TPM_PCRS_MALFORMED(f"quote PCR hash algorithm {q.pcrs.hash} is not supported")
        # Map keys are uint32 (int) and values bytes already; lookups by key are a third of the cost of ``items()``
        # on upb maps.
        values = q.pcrs.pcrs
        quotes.append(GcpQuote(bytes(q.quote), bytes(q.raw_sig), bank, {k: values[k] for k in values}))
    info = None
    if msg.HasField("instance_info"):
        i = msg.instance_info
        info = InstanceInfo(i.zone, i.project_id, i.project_number, i.instance_name, i.instance_id)
    which = msg.WhichOneof("tee_attestation")
    snp = _snp_part(msg.sev_snp_attestation) if which == "sev_snp_attestation" else None
    tdx = tdx_quote_bytes(msg.tdx_attestation) if which == "tdx_attestation" else None
    return GcpAttestation(
        ak_pub=bytes(msg.ak_pub),
        quotes=tuple(quotes),
        event_log=bytes(msg.event_log),
        instance_info=info,
        canonical_event_log=bytes(msg.canonical_event_log),
        ak_cert=bytes(msg.ak_cert),
        intermediate_certs=tuple(bytes(c) for c in msg.intermediate_certs),
        snp=snp,
        tdx_quote=tdx,
    )


# ---------------------------------------------------------------------------------------------- SEV-SNP


def _fixed(value: bytes, size: int, name: str) -> bytes:
    if len(value) != size:
        raise GCP_VTPM_TEE_MALFORMED(f"{name} is {len(value)} bytes, expected {size}")
    return bytes(value)


def _u8(value: int, name: str) -> int:
    if not 0 <= value <= 0xFF:
        raise GCP_VTPM_TEE_MALFORMED(f"{name} does not fit in a byte")
    return value


def _snp_part(att: Any) -> SnpPart:
    if not att.HasField("report"):
        raise GCP_VTPM_TEE_MALFORMED("sev_snp_attestation has no report")
    chain = att.certificate_chain
    certs = [bytes(c) for c in (chain.vcek_cert, chain.vlek_cert, chain.ask_cert, chain.ark_cert) if c]
    certs.extend(bytes(v) for _, v in sorted(chain.extras.items()) if v)
    return SnpPart(snp_report_bytes(att.report), tuple(certs), int(att.product.name))


def fms_to_bytes(eax: int) -> tuple[int, int, int]:
    """cpuid(1).eax (masked 0x0fff0fff) → (family, model, stepping) as the report stores them."""
    stepping = eax & 0xF
    base_model = (eax >> 4) & 0xF
    base_family = (eax >> 8) & 0xF
    ext_model = (eax >> 16) & 0xF
    ext_family = (eax >> 20) & 0xFF
    family = base_family + ext_family if base_family == 0xF else base_family
    model = (ext_model << 4) | base_model
    return family, model, stepping


def snp_report_bytes(report: Any) -> bytes:
    """go-sev-guest ``Report`` → the 1184-byte ATTESTATION_REPORT it renders."""
    r = report
    out = bytearray(0x4A0)
    struct.pack_into("<IIQ", out, 0x00, r.version, r.guest_svn, r.policy)
    out[0x10:0x20] = _fixed(r.family_id, 16, "family_id")
    out[0x20:0x30] = _fixed(r.image_id, 16, "image_id")
    struct.pack_into("<IIQQI", out, 0x30, r.vmpl, r.signature_algo, r.current_tcb, r.platform_info, r.signer_info)
    out[0x50:0x90] = _fixed(r.report_data, 64, "report_data")
    out[0x90:0xC0] = _fixed(r.measurement, 48, "measurement")
    out[0xC0:0xE0] = _fixed(r.host_data, 32, "host_data")
    out[0xE0:0x110] = _fixed(r.id_key_digest, 48, "id_key_digest")
    out[0x110:0x140] = _fixed(r.author_key_digest, 48, "author_key_digest")
    out[0x140:0x160] = _fixed(r.report_id, 32, "report_id")
    out[0x160:0x180] = _fixed(r.report_id_ma, 32, "report_id_ma")
    struct.pack_into("<Q", out, 0x180, r.reported_tcb)
    if r.version >= 3:
        family, model, stepping = fms_to_bytes(r.cpuid1eax_fms)
        out[0x188:0x18B] = bytes((_u8(family, "cpuid family"), model, stepping))
    out[0x1A0:0x1E0] = _fixed(r.chip_id, 64, "chip_id")
    struct.pack_into("<Q", out, 0x1E0, r.committed_tcb)
    out[0x1E8:0x1EB] = bytes(
        (_u8(r.current_build, "current_build"), _u8(r.current_minor, "current_minor"), _u8(r.current_major, "x"))
    )
    out[0x1EC:0x1EF] = bytes(
        (
            _u8(r.committed_build, "committed_build"),
            _u8(r.committed_minor, "committed_minor"),
            _u8(r.committed_major, "y"),
        )
    )
    struct.pack_into("<Q", out, 0x1F0, r.launch_tcb)
    if r.version >= 5:
        struct.pack_into("<QQ", out, 0x1F8, r.launch_mit_vector, r.current_mit_vector)
    out[0x2A0:0x4A0] = _fixed(r.signature, 512, "signature")
    return bytes(out)


# -------------------------------------------------------------------------------------------------- TDX


def _present(msg: Message, name: str, what: str) -> Any:
    if not msg.HasField(name):
        raise GCP_VTPM_TEE_MALFORMED(f"tdx_attestation has no {what}")
    return getattr(msg, name)


def tdx_quote_bytes(quote: Any) -> bytes:
    """go-tdx-guest ``QuoteV4`` → the raw quote v4 bytes (header ‖ body ‖ signature data ‖ extra bytes)."""
    h = _present(quote, "header", "header")
    b = _present(quote, "td_quote_body", "td_quote_body")
    s = _present(quote, "signed_data", "signed_data")
    if h.version != 4:
        raise GCP_VTPM_TEE_MALFORMED(f"tdx_attestation header version {h.version}")
    header = struct.pack("<HHI", h.version, h.attestation_key_type, h.tee_type) + b"".join(
        (
            _fixed(h.qe_svn, 2, "qe_svn"),
            _fixed(h.pce_svn, 2, "pce_svn"),
            _fixed(h.qe_vendor_id, 16, "qe_vendor_id"),
            _fixed(h.user_data, 20, "user_data"),
        )
    )
    if len(b.rtmrs) != 4:
        raise GCP_VTPM_TEE_MALFORMED(f"td_quote_body has {len(b.rtmrs)} RTMRs, expected 4")
    body = b"".join(
        (
            _fixed(b.tee_tcb_svn, 16, "tee_tcb_svn"),
            _fixed(b.mr_seam, 48, "mr_seam"),
            _fixed(b.mr_signer_seam, 48, "mr_signer_seam"),
            _fixed(b.seam_attributes, 8, "seam_attributes"),
            _fixed(b.td_attributes, 8, "td_attributes"),
            _fixed(b.xfam, 8, "xfam"),
            _fixed(b.mr_td, 48, "mr_td"),
            _fixed(b.mr_config_id, 48, "mr_config_id"),
            _fixed(b.mr_owner, 48, "mr_owner"),
            _fixed(b.mr_owner_config, 48, "mr_owner_config"),
            *(_fixed(r, 48, f"rtmr{i}") for i, r in enumerate(b.rtmrs)),
            _fixed(b.report_data, 64, "report_data"),
        )
    )
    cert = _present(s, "certification_data", "certification_data")
    qe = _present(cert, "qe_report_certification_data", "qe_report_certification_data")
    report = _present(qe, "qe_report", "qe_report")
    auth = _present(qe, "qe_auth_data", "qe_auth_data")
    pck = _present(qe, "pck_certificate_chain_data", "pck_certificate_chain_data")
    enclave = b"".join(
        (
            _fixed(report.cpu_svn, 16, "cpu_svn"),
            struct.pack("<I", report.misc_select),
            _fixed(report.reserved1, 28, "reserved1"),
            _fixed(report.attributes, 16, "attributes"),
            _fixed(report.mr_enclave, 32, "mr_enclave"),
            _fixed(report.reserved2, 32, "reserved2"),
            _fixed(report.mr_signer, 32, "mr_signer"),
            _fixed(report.reserved3, 96, "reserved3"),
            struct.pack("<HH", report.isv_prod_id, report.isv_svn),
            _fixed(report.reserved4, 60, "reserved4"),
            _fixed(report.report_data, 64, "qe report_data"),
        )
    )
    if auth.parsed_data_size != len(auth.data) or len(auth.data) > 0xFFFF:
        raise GCP_VTPM_TEE_MALFORMED("qe_auth_data size disagrees with its data")
    if pck.size != len(pck.pck_cert_chain):
        raise GCP_VTPM_TEE_MALFORMED("pck_certificate_chain_data size disagrees with its chain")
    inner = struct.pack("<HI", pck.certificate_data_type, pck.size) + bytes(pck.pck_cert_chain)
    qe_cert_data = (
        enclave
        + _fixed(qe.qe_report_signature, 64, "qe_report_signature")
        + struct.pack("<H", auth.parsed_data_size)
        + bytes(auth.data)
        + inner
    )
    if cert.size != len(qe_cert_data):
        raise GCP_VTPM_TEE_MALFORMED("certification_data size disagrees with its content")
    signed = (
        _fixed(s.signature, 64, "quote signature")
        + _fixed(s.ecdsa_attestation_key, 64, "attestation key")
        + struct.pack("<HI", cert.certificate_data_type, cert.size)
        + qe_cert_data
    )
    if quote.signed_data_size != len(signed):
        raise GCP_VTPM_TEE_MALFORMED("signed_data_size disagrees with the signature data")
    return header + body + struct.pack("<I", quote.signed_data_size) + signed + bytes(quote.extra_bytes)
