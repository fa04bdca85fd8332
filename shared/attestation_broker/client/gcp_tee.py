"""Render configfs-tsm hardware evidence as the go-sev-guest / go-tdx-guest messages a go-tpm-tools
``Attestation`` carries (fields 8 ``sev_snp_attestation`` and 9 ``tdx_attestation``).

Field by field from the hardware layouts — SEV-SNP ABI spec (#56860) Table 22 ATTESTATION_REPORT, Intel TDX
DCAP Quote Generation Library Appendix "Quote format" (v4) — into go-sev-guest proto/sevsnp.proto and
go-tdx-guest proto/tdx.proto. This is the inverse of the broker's own decoder
(:mod:`attestation_broker.evidence.gcp_vtpm.abi`), written independently of it, so the client ↔ broker
round trip checks both directions.
"""

from __future__ import annotations

import struct
from typing import Any

from attestation_broker.client.errors import CLIENT_TSM_FAILED
from attestation_broker.client.tsm import TsmReport
from attestation_broker.evidence.gcp_vtpm import proto


def snp_report_message(raw: bytes) -> Any:
    r = proto.new("sevsnp.Report")
    (r.version, r.guest_svn, r.policy) = struct.unpack_from("<IIQ", raw, 0)
    r.family_id, r.image_id = raw[0x10:0x20], raw[0x20:0x30]
    (r.vmpl, r.signature_algo, r.current_tcb, r.platform_info, r.signer_info) = struct.unpack_from("<IIQQI", raw, 0x30)
    r.report_data, r.measurement, r.host_data = raw[0x50:0x90], raw[0x90:0xC0], raw[0xC0:0xE0]
    r.id_key_digest, r.author_key_digest = raw[0xE0:0x110], raw[0x110:0x140]
    r.report_id, r.report_id_ma = raw[0x140:0x160], raw[0x160:0x180]
    (r.reported_tcb,) = struct.unpack_from("<Q", raw, 0x180)
    if r.version >= 3:
        family, model, stepping = raw[0x188], raw[0x189], raw[0x18A]
        ext_family, base_family = (family - 0xF, 0xF) if family >= 0xF else (0, family)
        r.cpuid1eax_fms = (
            (ext_family << 20) | ((model >> 4) << 16) | (base_family << 8) | ((model & 0xF) << 4) | stepping
        )
    r.chip_id = raw[0x1A0:0x1E0]
    (r.committed_tcb,) = struct.unpack_from("<Q", raw, 0x1E0)
    r.current_build, r.current_minor, r.current_major = raw[0x1E8], raw[0x1E9], raw[0x1EA]
    r.committed_build, r.committed_minor, r.committed_major = raw[0x1EC], raw[0x1ED], raw[0x1EE]
    (r.launch_tcb,) = struct.unpack_from("<Q", raw, 0x1F0)
    if r.version >= 5:
        (r.launch_mit_vector, r.current_mit_vector) = struct.unpack_from("<QQ", raw, 0x1F8)
    r.signature = raw[0x2A0:0x4A0]
    return r


def snp_attestation_message(raw: bytes, vcek_der: bytes = b"") -> Any:
    att = proto.new("sevsnp.Attestation")
    att.report.CopyFrom(snp_report_message(raw))
    if vcek_der:
        att.certificate_chain.vcek_cert = vcek_der
    return att


def tdx_quote_message(raw: bytes) -> Any:
    q = proto.new("tdx.QuoteV4")
    h = q.header
    (h.version, h.attestation_key_type, h.tee_type) = struct.unpack_from("<HHI", raw, 0)
    h.qe_svn, h.pce_svn, h.qe_vendor_id, h.user_data = raw[8:10], raw[10:12], raw[12:28], raw[28:48]
    b = q.td_quote_body
    pos = 48
    for name, size in (
        ("tee_tcb_svn", 16),
        ("mr_seam", 48),
        ("mr_signer_seam", 48),
        ("seam_attributes", 8),
        ("td_attributes", 8),
        ("xfam", 8),
        ("mr_td", 48),
        ("mr_config_id", 48),
        ("mr_owner", 48),
        ("mr_owner_config", 48),
    ):
        setattr(b, name, raw[pos : pos + size])
        pos += size
    for _ in range(4):
        b.rtmrs.append(raw[pos : pos + 48])
        pos += 48
    b.report_data = raw[pos : pos + 64]
    pos += 64
    (q.signed_data_size,) = struct.unpack_from("<I", raw, pos)
    pos += 4
    end = pos + q.signed_data_size
    s = q.signed_data
    s.signature, s.ecdsa_attestation_key = raw[pos : pos + 64], raw[pos + 64 : pos + 128]
    pos += 128
    c = s.certification_data
    (c.certificate_data_type, c.size) = struct.unpack_from("<HI", raw, pos)
    pos += 6
    qe = c.qe_report_certification_data
    e = qe.qe_report
    e.cpu_svn = raw[pos : pos + 16]
    (e.misc_select,) = struct.unpack_from("<I", raw, pos + 16)
    e.reserved1, e.attributes = raw[pos + 20 : pos + 48], raw[pos + 48 : pos + 64]
    e.mr_enclave, e.reserved2 = raw[pos + 64 : pos + 96], raw[pos + 96 : pos + 128]
    e.mr_signer, e.reserved3 = raw[pos + 128 : pos + 160], raw[pos + 160 : pos + 256]
    (e.isv_prod_id, e.isv_svn) = struct.unpack_from("<HH", raw, pos + 256)
    e.reserved4, e.report_data = raw[pos + 260 : pos + 320], raw[pos + 320 : pos + 384]
    pos += 384
    qe.qe_report_signature = raw[pos : pos + 64]
    pos += 64
    (size,) = struct.unpack_from("<H", raw, pos)
    qe.qe_auth_data.parsed_data_size = size
    qe.qe_auth_data.data = raw[pos + 2 : pos + 2 + size]
    pos += 2 + size
    pck = qe.pck_certificate_chain_data
    (pck.certificate_data_type, pck.size) = struct.unpack_from("<HI", raw, pos)
    pck.pck_cert_chain = raw[pos + 6 : pos + 6 + pck.size]
    pos += 6 + pck.size
    if pos != end:
        raise CLIENT_TSM_FAILED("TDX quote certification data does not fill signed_data_size")
    q.extra_bytes = raw[end:]
    return q


def attach_tee(att: Any, report: TsmReport) -> None:
    """Put a configfs-tsm report into ``att`` (SNP with its auxblob certificates; TDX as QuoteV4)."""
    if report.provider == "sev_guest":
        from attestation_broker.evidence.snp.abi import parse_cert_table

        certs = {e.role: e.data for e in parse_cert_table(report.auxblob)} if any(report.auxblob) else {}
        snp = snp_attestation_message(report.outblob[:0x4A0], certs.get("vcek", b""))
        for role in ("ask", "ark", "vlek"):
            if certs.get(role):
                setattr(snp.certificate_chain, f"{role}_cert", certs[role])
        att.sev_snp_attestation.CopyFrom(snp)
    elif report.provider == "tdx_guest":
        att.tdx_attestation.CopyFrom(tdx_quote_message(report.outblob))
    else:
        raise CLIENT_TSM_FAILED(f"configfs-tsm provider {report.provider!r} has no go-tpm-tools field")
