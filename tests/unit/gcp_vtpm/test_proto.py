"""The runtime-built go-tpm-tools schema matches attest.proto; binary and text decoding are strict."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.gcp_vtpm import proto
from google.protobuf import text_format

from tests.support.vectors import vector

PB = "gcp/gce-cos-85-nonce9009.attestation.pb"
_SCALARS = {"bytes": 12, "string": 9, "uint32": 13, "uint64": 4, "bool": 8}


def _proto_file_fields() -> dict[str, dict[str, tuple[int, bool, str]]]:
    """package.Message -> {field: (number, repeated, type)} read from attest.proto (top-level messages and
    one level of nesting, which is all the file uses)."""
    text = resources.files("attestation_broker.evidence.gcp_vtpm").joinpath("attest.proto").read_text()
    text = re.sub(r"//[^\n]*", "", text)
    out: dict[str, dict[str, tuple[int, bool, str]]] = {}
    package = ""
    stack: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if m := re.match(r"package (\w+);", line):
            package = m.group(1)
        elif m := re.match(r"(message|enum|oneof) (\w+) \{", line):
            stack.append(m.group(2) if m.group(1) != "oneof" else "")
            if m.group(1) == "message":
                out[package + "." + ".".join(s for s in stack if s)] = {}
        elif line == "}":
            stack.pop()
        elif m := re.match(r"(repeated )?(map<\w+, ?\w+>|[\w.]+) (\w+) = (\d+);", line):
            owner = package + "." + ".".join(s for s in stack if s)
            if owner in out:
                out[owner][m.group(3)] = (
                    int(m.group(4)),
                    bool(m.group(1)) or m.group(2).startswith("map<"),
                    m.group(2),
                )
    return out


def test_runtime_descriptor_matches_proto_file() -> None:
    expected = _proto_file_fields()
    runtime = {
        f"{pkg}.{name}" for pkg, (_, _, msgs) in proto.SCHEMA.items() for name in msgs if not name.endswith("Entry")
    }
    assert set(expected) == runtime
    for full_name, fields in expected.items():
        desc = proto.pool().FindMessageTypeByName(full_name)
        got = {f.name: (f.number, f.is_repeated, f.type) for f in desc.fields}
        assert set(got) == set(fields), full_name
        for name, (number, repeated, type_name) in fields.items():
            assert got[name][0] == number, f"{full_name}.{name}"
            assert got[name][1] == repeated, f"{full_name}.{name}"
            if type_name in _SCALARS:
                assert got[name][2] == _SCALARS[type_name], f"{full_name}.{name}"


def test_tee_members_are_a_oneof() -> None:
    desc = proto.pool().FindMessageTypeByName("attest.Attestation")
    oneof = desc.oneofs_by_name["tee_attestation"]
    assert [f.name for f in oneof.fields] == ["sev_snp_attestation", "tdx_attestation"]


def test_binary_and_text_decode_agree() -> None:
    data = vector(PB)
    msg = proto.decode_attestation(data)
    assert len(msg.ak_pub) == 280 and len(msg.quotes) == 3 and len(msg.event_log) == 23970
    assert [q.pcrs.hash for q in msg.quotes] == [4, 11, 12]
    assert all(len(q.pcrs.pcrs) == 24 for q in msg.quotes)
    text = text_format.MessageToString(msg).encode()
    assert proto.decode_attestation(text) == msg


@pytest.mark.parametrize(
    "data",
    [
        vector(PB) + b"\x78\x01",  # unknown field 15 (varint)
        vector(PB)[:-7],  # truncated inside the AK certificate
        b"\x0a\xff\xff\xff\xff\x0f",  # length beyond the input
        b"ak_pub: 1\n",  # text format with a wrong value type
        b"bogus_field: 1\n",
    ],
)
def test_malformed_rejected(data: bytes) -> None:
    with pytest.raises(BrokerError) as exc:
        proto.decode_attestation(data)
    assert exc.value.code.name == "MALFORMED_EVIDENCE"


def test_unknown_nested_field_rejected() -> None:
    msg = proto.decode_attestation(vector(PB))
    quote = msg.quotes[0].SerializeToString() + b"\x78\x01"
    msg.quotes[0].ParseFromString(quote)
    with pytest.raises(BrokerError) as exc:
        proto.decode_attestation(msg.SerializeToString())
    assert exc.value.code.name == "MALFORMED_EVIDENCE"
