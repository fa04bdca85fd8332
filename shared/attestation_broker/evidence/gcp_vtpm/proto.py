"""go-tpm-tools ``attest.Attestation`` message classes, built at runtime (no generated ``_pb2`` code).

The schema is ``attest.proto`` beside this module (go-tpm-tools proto/attest.proto and proto/tpm.proto,
go-sev-guest proto/sevsnp.proto, go-tdx-guest proto/tdx.proto: field numbers as published). Here the
same schema is written as a small table, turned into ``FileDescriptorProto``s in a private
``DescriptorPool`` (so nothing clashes with other protobuf users in the process) and materialised with
``message_factory``. A test checks the table against the ``.proto`` file field by field.

:func:`decode_attestation` accepts the binary wire form or the text form (``text_format``) and rejects
unknown fields: a strict parser fails closed on inputs it does not understand.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from google.protobuf.message import DecodeError, Message

from attestation_broker.errors import MALFORMED_EVIDENCE

_F = descriptor_pb2.FieldDescriptorProto
# (name, number, type, label, type_name or None); type_name is fully qualified (".pkg.Msg").
Field = tuple[str, int, int, int, str | None]
OPT, REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
BYTES, STRING, U32, U64, BOOL = _F.TYPE_BYTES, _F.TYPE_STRING, _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_BOOL
MSG, ENUM = _F.TYPE_MESSAGE, _F.TYPE_ENUM


def _b(name: str, number: int) -> Field:
    return (name, number, BYTES, OPT, None)


def _u32(name: str, number: int) -> Field:
    return (name, number, U32, OPT, None)


def _u64(name: str, number: int) -> Field:
    return (name, number, U64, OPT, None)


def _m(name: str, number: int, type_name: str, label: int = OPT) -> Field:
    return (name, number, MSG, label, type_name)


# package -> (dependencies, enums {name: [(value name, number)]}, messages {name: [fields]}).
# Map fields are declared as repeated nested "*Entry" messages with map_entry set (proto3 rule).
SCHEMA: dict[str, tuple[list[str], dict[str, list[tuple[str, int]]], dict[str, list[Field]]]] = {
    "tpm": (
        [],
        {"HashAlgo": [("HASH_INVALID", 0), ("SHA1", 4), ("SHA256", 11), ("SHA384", 12), ("SHA512", 13)]},
        {
            "Quote": [_b("quote", 1), _b("raw_sig", 2), _m("pcrs", 3, ".tpm.PCRs")],
            "PCRs": [("hash", 1, ENUM, OPT, ".tpm.HashAlgo"), _m("pcrs", 2, ".tpm.PCRs.PcrsEntry", REP)],
            "PCRs.PcrsEntry": [_u32("key", 1), _b("value", 2)],
        },
    ),
    "sevsnp": (
        ["google/protobuf/wrappers.proto"],
        {
            "SevProduct.SevProductName": [
                ("SEV_PRODUCT_UNKNOWN", 0),
                ("SEV_PRODUCT_MILAN", 1),
                ("SEV_PRODUCT_GENOA", 2),
                ("SEV_PRODUCT_TURIN", 3),
            ]
        },
        {
            "Report": [
                _u32("version", 1),
                _u32("guest_svn", 2),
                _u64("policy", 3),
                _b("family_id", 4),
                _b("image_id", 5),
                _u32("vmpl", 6),
                _u32("signature_algo", 7),
                _u64("current_tcb", 8),
                _u64("platform_info", 9),
                _u32("signer_info", 10),
                _b("report_data", 11),
                _b("measurement", 12),
                _b("host_data", 13),
                _b("id_key_digest", 14),
                _b("author_key_digest", 15),
                _b("report_id", 16),
                _b("report_id_ma", 17),
                _u64("reported_tcb", 18),
                _b("chip_id", 19),
                _u64("committed_tcb", 20),
                _u32("current_build", 21),
                _u32("current_minor", 22),
                _u32("current_major", 23),
                _u32("committed_build", 24),
                _u32("committed_minor", 25),
                _u32("committed_major", 26),
                _u64("launch_tcb", 27),
                _b("signature", 28),
                _u32("cpuid1eax_fms", 29),
                _u64("launch_mit_vector", 30),
                _u64("current_mit_vector", 31),
            ],
            "CertificateChain": [
                _b("vcek_cert", 1),
                _b("ask_cert", 2),
                _b("ark_cert", 3),
                _b("firmware_cert", 4),
                _b("vlek_cert", 6),
                _m("extras", 7, ".sevsnp.CertificateChain.ExtrasEntry", REP),
            ],
            "CertificateChain.ExtrasEntry": [("key", 1, STRING, OPT, None), _b("value", 2)],
            "SevProduct": [
                ("name", 1, ENUM, OPT, ".sevsnp.SevProduct.SevProductName"),
                _u32("stepping", 2),
                _m("machine_stepping", 3, ".google.protobuf.UInt32Value"),
            ],
            "Attestation": [
                _m("report", 1, ".sevsnp.Report"),
                _m("certificate_chain", 2, ".sevsnp.CertificateChain"),
                _m("product", 3, ".sevsnp.SevProduct"),
            ],
        },
    ),
    "tdx": (
        [],
        {},
        {
            "QuoteV4": [
                _m("header", 1, ".tdx.Header"),
                _m("td_quote_body", 2, ".tdx.TDQuoteBody"),
                _u32("signed_data_size", 3),
                _m("signed_data", 4, ".tdx.Ecdsa256BitQuoteV4AuthData"),
                _b("extra_bytes", 5),
            ],
            "Header": [
                _u32("version", 1),
                _u32("attestation_key_type", 2),
                _u32("tee_type", 3),
                _b("qe_svn", 4),
                _b("pce_svn", 5),
                _b("qe_vendor_id", 6),
                _b("user_data", 7),
            ],
            "TDQuoteBody": [
                _b("tee_tcb_svn", 1),
                _b("mr_seam", 2),
                _b("mr_signer_seam", 3),
                _b("seam_attributes", 4),
                _b("td_attributes", 5),
                _b("xfam", 6),
                _b("mr_td", 7),
                _b("mr_config_id", 8),
                _b("mr_owner", 9),
                _b("mr_owner_config", 10),
                ("rtmrs", 11, BYTES, REP, None),
                _b("report_data", 12),
            ],
            "Ecdsa256BitQuoteV4AuthData": [
                _b("signature", 1),
                _b("ecdsa_attestation_key", 2),
                _m("certification_data", 3, ".tdx.CertificationData"),
            ],
            "CertificationData": [
                _u32("certificate_data_type", 1),
                _u32("size", 2),
                _m("qe_report_certification_data", 3, ".tdx.QEReportCertificationData"),
            ],
            "QEReportCertificationData": [
                _m("qe_report", 1, ".tdx.EnclaveReport"),
                _b("qe_report_signature", 2),
                _m("qe_auth_data", 3, ".tdx.QeAuthData"),
                _m("pck_certificate_chain_data", 4, ".tdx.PCKCertificateChainData"),
            ],
            "PCKCertificateChainData": [_u32("certificate_data_type", 1), _u32("size", 2), _b("pck_cert_chain", 3)],
            "QeAuthData": [_u32("parsed_data_size", 1), _b("data", 2)],
            "EnclaveReport": [
                _b("cpu_svn", 1),
                _u32("misc_select", 2),
                _b("reserved1", 3),
                _b("attributes", 4),
                _b("mr_enclave", 5),
                _b("reserved2", 6),
                _b("mr_signer", 7),
                _b("reserved3", 8),
                _u32("isv_prod_id", 9),
                _u32("isv_svn", 10),
                _b("reserved4", 11),
                _b("report_data", 12),
            ],
        },
    ),
    "attest": (
        ["tpm.proto", "sevsnp.proto", "tdx.proto"],
        {},
        {
            "GCEInstanceInfo": [
                ("zone", 1, STRING, OPT, None),
                ("project_id", 2, STRING, OPT, None),
                _u64("project_number", 3),
                ("instance_name", 4, STRING, OPT, None),
                _u64("instance_id", 5),
            ],
            "Attestation": [
                _b("ak_pub", 1),
                _m("quotes", 2, ".tpm.Quote", REP),
                _b("event_log", 3),
                _m("instance_info", 4, ".attest.GCEInstanceInfo"),
                _b("canonical_event_log", 5),
                _b("ak_cert", 6),
                ("intermediate_certs", 7, BYTES, REP, None),
                _m("sev_snp_attestation", 8, ".sevsnp.Attestation"),
                _m("tdx_attestation", 9, ".tdx.QuoteV4"),
            ],
        },
    ),
}
# Members of the ``tee_attestation`` oneof of attest.Attestation.
ONEOF_TEE = ("sev_snp_attestation", "tdx_attestation")


def _file(package: str) -> descriptor_pb2.FileDescriptorProto:
    deps, enums, messages = SCHEMA[package]
    fdp = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package, syntax="proto3")
    fdp.dependency.extend(deps)
    built: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path in messages:  # parents precede their nested "*Entry" messages in the table
        parent, _, leaf = path.rpartition(".")
        container = built[parent].nested_type if parent else fdp.message_type
        msg = container.add(name=leaf)
        built[path] = msg
        if leaf.endswith("Entry") and parent:
            msg.options.map_entry = True
        for name, number, ftype, label, type_name in messages[path]:
            field = msg.field.add(name=name, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name
            if package == "attest" and path == "Attestation" and name in ONEOF_TEE:
                field.oneof_index = 0
        if package == "attest" and path == "Attestation":
            msg.oneof_decl.add(name="tee_attestation")
    for path, values in enums.items():
        parent, _, leaf = path.rpartition(".")
        enum = (built[parent].enum_type if parent else fdp.enum_type).add(name=leaf)
        for value_name, value in values:
            enum.value.add(name=value_name, number=value)
    return fdp


@cache
def pool() -> descriptor_pool.DescriptorPool:
    """A private pool holding wrappers.proto and the four schema files."""
    result = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    result.Add(wrappers)
    for package in ("tpm", "sevsnp", "tdx", "attest"):
        result.Add(_file(package))
    return result


@cache
def message_class(full_name: str) -> type[Message]:
    """The runtime class of a schema message, e.g. ``attest.Attestation``."""
    return message_factory.GetMessageClass(pool().FindMessageTypeByName(full_name))


def new(full_name: str) -> Any:
    """A fresh, empty message (typed ``Any``: runtime classes have no static field types)."""
    return message_class(full_name)()


def decode_attestation(data: bytes) -> Any:
    """Decode an ``attest.Attestation`` from binary wire format or text format; strict."""
    msg = new("attest.Attestation")
    stripped = data.lstrip()
    # Binary Attestations start with a field key byte (0x0a..0x4a); text starts with a field name or comment.
    if stripped[:1].isalpha() or stripped[:1] == b"#":
        try:
            text_format.Parse(data.decode("utf-8"), msg)
        except (UnicodeDecodeError, text_format.ParseError):
            raise MALFORMED_EVIDENCE("Attestation text format does not parse") from None
        return msg
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeWarning):
        raise MALFORMED_EVIDENCE("Attestation protobuf does not decode") from None
    # Unknown fields anywhere in the tree (upb keeps them, also a map entry's, which it files under the map's
    # message) are part of the encoded size; discarding them changes it. Two C-level encodings instead of a Python
    # walk over every sub-message (a third of the decode).
    size = msg.ByteSize()
    msg.DiscardUnknownFields()
    if msg.ByteSize() != size:
        raise MALFORMED_EVIDENCE("Attestation protobuf carries unknown fields")
    return msg
