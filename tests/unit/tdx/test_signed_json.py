"""Intel signed JSON carried as (signed bytes, signature) pairs: the one splitter, attacked on purpose.

Intel signs the exact bytes of the inner object. The splitter must hand the verifier exactly those
bytes or refuse: duplicate member names (anywhere), braces and quotes inside strings, trailing data,
extra members, and signatures of the wrong shape.
"""

from __future__ import annotations

import json

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.tdx.collateral import TdxCollateral, looks_like_dcap_qvl_json
from attestation_broker.evidence.tdx.pcs import signed_pair, split_signed

from tests.unit.tdx.support import c1_bodies, dcap_json

SIG = "ab" * 64


def _code(fn: object, *args: object) -> str:
    with pytest.raises(BrokerError) as exc:
        fn(*args)  # type: ignore[operator]
    return exc.value.code.name


@pytest.mark.parametrize(
    ("body", "signed"),
    [
        ('{"tcbInfo":{"a":1},"signature":"' + SIG + '"}', '{"a":1}'),
        ('{"signature":"' + SIG + '","tcbInfo":{"a":1}}', '{"a":1}'),  # members in either order
        (' \n{ "tcbInfo" : { "a" : [1, 2] } ,\t"signature" : "' + SIG + '" }\n', '{ "a" : [1, 2] }'),
        ('{"tcbInfo":{"s":"}{\\"],"},"signature":"' + SIG + '"}', '{"s":"}{\\"],"}'),  # braces in strings
        ('{"tcbInfo":{"s":"\\u007d"},"signature":"' + SIG + '"}', '{"s":"\\u007d"}'),  # escapes kept verbatim
        ('{"tcbInfo":{"k":"é"},"signature":"' + SIG + '"}', '{"k":"é"}'),  # UTF-8 bytes kept verbatim
        ('{"tcbInfo":{"tcbInfo":{},"signature":"x"},"signature":"' + SIG + '"}', '{"tcbInfo":{},"signature":"x"}'),
    ],
)
def test_split_returns_exact_signed_bytes(body: str, signed: str) -> None:
    pair = split_signed(body.encode(), "tcbInfo")
    assert pair.signed == signed.encode()
    assert pair.signature == bytes.fromhex(SIG)
    assert pair.body == json.loads(signed)


@pytest.mark.parametrize(
    "body",
    [
        '{"tcbInfo":{"a":1},"tcbInfo":{"a":2},"signature":"' + SIG + '"}',  # duplicate top-level member
        '{"tcbInfo":{"a":1,"a":2},"signature":"' + SIG + '"}',  # duplicate inside the signed object
        '{"tcbInfo":{"x":{"b":1,"b":1}},"signature":"' + SIG + '"}',  # duplicate deeper down
        '{"tcbInfo":{"a":1},"signature":"' + SIG + '","signature":"' + SIG + '"}',
        '{"tcbInfo":{"a":1},"signature":"' + SIG + '"}{"tcbInfo":{}}',  # trailing document
        '{"tcbInfo":{"a":1},"signature":"' + SIG + '"} x',  # trailing garbage
        '{"tcbInfo":{"a":1},"signature":"' + SIG + '",}',  # trailing comma
        '{"tcbInfo":{"a":1},"signature":"' + SIG + '","extra":1}',  # an unsigned extra member
        '{"tcbInfo":{"a":1}}',  # no signature
        '{"tcbInfo":[1],"signature":"' + SIG + '"}',  # not an object
        '{"tcbInfo":{"a":NaN},"signature":"' + SIG + '"}',  # not JSON
        '{"tcbInfo":{"a":1},"signature":"' + SIG[:-2] + '"}',  # 63-byte signature
        '{"tcbInfo":{"a":1},"signature":"' + "zz" * 64 + '"}',  # not hex
        '{"tcbInfo":{"a":1},"signature":"' + " " + SIG[1:] + '"}',  # fromhex would skip spaces
        '{"enclaveIdentity":{"a":1},"signature":"' + SIG + '"}',  # the other key
        '["tcbInfo"]',
        "",
        "\ufeff" + '{"tcbInfo":{"a":1},"signature":"' + SIG + '"}',  # BOM
    ],
)
def test_split_refuses(body: str) -> None:
    assert _code(split_signed, body.encode(), "tcbInfo") == "COLLATERAL_INVALID"


def test_split_refuses_invalid_utf8() -> None:
    body = b'{"tcbInfo":{"a":"\xff"},"signature":"' + SIG.encode() + b'"}'
    assert _code(split_signed, body, "tcbInfo") == "COLLATERAL_INVALID"


def test_real_pcs_bodies_split_once_and_memoized() -> None:
    body = c1_bodies()["tcb_info"]
    first = split_signed(body, "tcbInfo")
    assert split_signed(body, "tcbInfo") is first
    assert first.body["fmspc"] == "90c06f000000" and len(first.signature) == 64
    assert body.index(first.signed) == len('{"tcbInfo":')


@pytest.mark.parametrize(
    ("signed", "signature"),
    [
        ('{"a":1,"a":2}', SIG),
        ('{"a":1} {"b":2}', SIG),
        ("[1]", SIG),
        ('{"a":1}', SIG + "00"),
        ('{"a":1}', "0x" + SIG[2:]),
    ],
)
def test_pair_refuses(signed: str, signature: str) -> None:
    assert _code(signed_pair, signed, signature, "tcb_info") == "COLLATERAL_INVALID"


def test_dcap_qvl_pairs_are_taken_as_they_travel() -> None:
    doc = json.loads(dcap_json("D6"))
    col = TdxCollateral.from_dcap_qvl_json(dcap_json("D6"))
    assert col.tcb_info.signed == doc["tcb_info"].encode()
    assert col.tcb_info.signature.hex() == doc["tcb_info_signature"]
    assert col.qe_identity.signed == doc["qe_identity"].encode()
    again = TdxCollateral.from_dcap_qvl_json(col.to_dcap_qvl_json())
    assert again.tcb_info == col.tcb_info and again.qe_identity == col.qe_identity
    assert again.pck_crl == col.pck_crl and again.tcb_info_issuer_chain == col.tcb_info_issuer_chain


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.pop("tcb_info_issuer_chain"),
        lambda d: d.update(tcb_info_sig="00"),  # a typo must not be ignored
        lambda d: d.update(tcb_info=1),
        lambda d: d.update(pck_crl="zz"),
    ],
)
def test_dcap_qvl_document_shape(edit: object) -> None:
    doc = json.loads(dcap_json("D6"))
    edit(doc)  # type: ignore[operator]
    assert _code(TdxCollateral.from_dcap_qvl_json, json.dumps(doc)) == "COLLATERAL_INVALID"


def test_dcap_qvl_duplicate_member_is_refused() -> None:
    text = dcap_json("D6").rstrip().rstrip("}") + ',"tcb_info_signature":"' + SIG + '"}'
    assert _code(TdxCollateral.from_dcap_qvl_json, text) == "COLLATERAL_INVALID"


def test_recognizes_dcap_qvl_json_by_content() -> None:
    assert looks_like_dcap_qvl_json(dcap_json("D6").encode())
    assert not looks_like_dcap_qvl_json(c1_bodies()["tcb_info"])
    assert not looks_like_dcap_qvl_json(b"\x30\x82")
