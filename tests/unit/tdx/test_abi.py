"""Quote parsing on every real TDX vector, and malformed-input codes."""

from __future__ import annotations

import struct

import pytest
from attestation_broker.evidence.tdx import parse_quote

from tests.support.errors import code_of
from tests.unit.tdx.support import QUOTES, quote_bytes

# name: (version, body type, trailing bytes, TEE_TCB_SVN, MRTD prefix)
EXPECTED = {
    "D1": (4, 2, 39, "03000400000000000000000000000000", "6363b8043668a3ad"),
    "D2": (5, 3, 0, "0b010400000000000000000000000000", "7348651a34b2d2d3"),
    "D3": (4, 2, 3065, "04010700000000000000000000000000", "dae67181d3d65e07"),
    "D4": (4, 2, 0, "03000500000000000000000000000000", "705ee9381b8633a9"),
    "D5": (4, 2, 70, "02010600000000000000000000000000", "024a32b070383331"),
    "D6": (4, 2, 70, "06010300000000000000000000000000", "91eb2b44d141d4ec"),
    "D6hex": (4, 2, 70, "05010200000000000000000000000000", "7ba9e262ce697908"),
    "D7": (5, 3, 0, "07010300000000000000000000000000", "273828c46252fcbd"),
    "D8": (4, 2, 70, "07010300000000000000000000000000", "f858414aef26d52a"),
}


@pytest.mark.parametrize("name", sorted(QUOTES))
def test_parse_real_quotes(name: str) -> None:
    data = quote_bytes(name)
    version, body_type, trailing, svn, mrtd = EXPECTED[name]
    q = parse_quote(data)
    assert (q.version, q.body_type, len(data) - q.length) == (version, body_type, trailing)
    assert q.body.tee_tcb_svn.hex() == svn
    assert q.body.mr_td.hex().startswith(mrtd)
    assert len(q.signed) == (702 if version == 5 else 632)
    assert q.qe_report.mr_signer.hex().startswith("dc9e2a7c6f948f17")
    assert q.pck_chain_pem.count(b"-----BEGIN CERTIFICATE-----") == 3
    assert (q.body.tee_tcb_svn2 is not None) == (body_type == 3)


def test_td15_fields() -> None:
    q = parse_quote(quote_bytes("D2"))
    assert q.body.tee_tcb_svn2 is not None and q.body.tee_tcb_svn2.hex() == "0d010400000000000000000000000000"
    assert q.body.mr_servicetd == bytes(48)


def test_trailing_bytes_do_not_change_the_parse() -> None:
    data = quote_bytes("D4")
    assert parse_quote(data + b"garbage" * 10) == parse_quote(data)


@pytest.mark.parametrize("cut", [10, 47, 100, 631, 635, 700, 1000, 4000])
def test_truncated(cut: int) -> None:
    assert code_of(parse_quote, quote_bytes("D4")[:cut]) == "TDX_QUOTE_TRUNCATED"


@pytest.mark.parametrize(
    ("offset", "value", "code"),
    [
        (0, struct.pack("<H", 3), "TDX_QUOTE_UNSUPPORTED"),  # version 3 (SGX)
        (2, struct.pack("<H", 3), "TDX_QUOTE_UNSUPPORTED"),  # ECDSA P-384 key type
        (4, struct.pack("<I", 0), "TDX_QUOTE_UNSUPPORTED"),  # TEE type SGX
        (12, b"\x00" * 16, "TDX_QUOTE_UNSUPPORTED"),  # QE vendor not Intel
        (632, struct.pack("<I", 0xFFFFFF), "TDX_QUOTE_TRUNCATED"),  # signature data length too large
        (636 + 128, struct.pack("<H", 5), "TDX_QUOTE_UNSUPPORTED"),  # cert data type 5 at the top level
    ],
)
def test_header_and_length_fields(offset: int, value: bytes, code: str) -> None:
    data = bytearray(quote_bytes("D4"))
    data[offset : offset + len(value)] = value
    assert code_of(parse_quote, bytes(data)) == code


def test_inconsistent_cert_data_length() -> None:
    data = bytearray(quote_bytes("D4"))
    (size,) = struct.unpack_from("<I", data, 636 + 130)
    struct.pack_into("<I", data, 636 + 130, size - 10)  # certification data shorter than its content
    assert code_of(parse_quote, bytes(data)) in ("TDX_QUOTE_TRUNCATED", "TDX_CERT_DATA_INVALID")


@pytest.mark.parametrize(("body_type", "size"), [(1, 384), (3, 584), (4, 648)])
def test_v5_body_descriptor(body_type: int, size: int) -> None:
    data = bytearray(quote_bytes("D2"))
    struct.pack_into("<HI", data, 48, body_type, size)
    assert code_of(parse_quote, bytes(data)) == "TDX_QUOTE_UNSUPPORTED"
