"""Mutations of the real vectors: each signed region, the COSE header, the chain, time, and the CBOR itself."""

from __future__ import annotations

import base64
from datetime import timedelta

import cbor2
import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.evidence.nitro.abi import MAX_DOCUMENT_BYTES
from attestation_broker.evidence.nitro.checks import _CHAINS
from attestation_broker.evidence.nitro.kind import NitroVerifier
from attestation_broker.trust.chain import PATHS
from attestation_broker.verifier import Submission

from tests.support.context import offline_context
from tests.support.errors import code_of, expect

from .fakes import der, fake_pki
from .support import (
    DEBUG,
    NONDEBUG,
    SAN_2023,
    VECTORS,
    NitroVector,
    flip,
    payload_of,
    rebuild,
    run,
    split,
    with_payload,
)

# --- signed regions --------------------------------------------------------------------------------


# Every signed payload field each vector actually carries (the manifest says which have user_data / nonce).
FLIPS = [
    pytest.param(vec, field, id=f"{vec.name}-{field}")
    for vec in VECTORS
    for field in ("pcr0", "pcr3", "module_id", "user_data", "nonce")
    if not (field == "user_data" and vec.user_data_len is None) and not (field == "nonce" and vec.nonce_len is None)
]


@pytest.mark.parametrize(("vec", "field"), FLIPS)
def test_payload_byte_flip_breaks_signature(vec: NitroVector, field: str) -> None:
    raw = vec.raw()
    body = payload_of(raw)
    target = {
        "pcr0": body["pcrs"][0],
        "pcr3": body["pcrs"][3],
        "module_id": body["module_id"].encode(),
        "user_data": body["user_data"],
        "nonce": body["nonce"],
    }[field]
    offset = raw.index(target) + len(target) // 2
    # Flip a low bit: text stays ASCII, lengths unchanged, so only the signature can notice.
    assert code_of(lambda: run(flip(raw, offset), vec.now)) == "NITRO_SIGNATURE_INVALID"


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
@pytest.mark.parametrize("where", [0, 47, 48, 95])
def test_signature_flip(vec: NitroVector, where: int) -> None:
    raw = vec.raw()
    offset = len(raw) - 96 + where  # the signature is the last member
    assert code_of(lambda: run(flip(raw, offset), vec.now)) == "NITRO_SIGNATURE_INVALID"


def test_zero_signature() -> None:
    raw = NONDEBUG.raw()
    assert code_of(lambda: run(rebuild(raw, signature=bytes(96)), NONDEBUG.now)) == "NITRO_SIGNATURE_INVALID"


def test_signature_wrong_length() -> None:
    raw = NONDEBUG.raw()
    signature = split(raw)[3]
    assert code_of(lambda: run(rebuild(raw, signature=signature + b"\x00"), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"
    assert code_of(lambda: run(rebuild(raw, signature=signature[:64]), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


def test_unmodified_rebuild_still_verifies() -> None:
    # Guard for the surgery helpers: re-encoding without a change must not itself break anything.
    raw = NONDEBUG.raw()
    assert rebuild(raw) == raw
    run(rebuild(raw), NONDEBUG.now)


# --- protected header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protected",
    [
        cbor2.dumps({1: -7}),  # ES256
        cbor2.dumps({1: -36}),  # ES512
        cbor2.dumps({1: -37}),  # PS256
        cbor2.dumps({1: "ES384"}),
        cbor2.dumps({1: -35, 4: b"kid"}),  # alg plus another parameter
        cbor2.dumps({1: -35, 2: [1]}),  # alg plus crit
        cbor2.dumps({}),
        b"",
        cbor2.dumps({1.0: -35}),
        cbor2.dumps([1, -35]),
    ],
    ids=["es256", "es512", "ps256", "text", "kid", "crit", "empty-map", "empty", "float-key", "array"],
)
def test_protected_header_must_be_exactly_es384(protected: bytes) -> None:
    raw = NONDEBUG.raw()
    assert code_of(lambda: run(rebuild(raw, protected=protected), NONDEBUG.now)) == "NITRO_ALG_UNSUPPORTED"


def test_protected_header_byte_flip() -> None:
    raw = NONDEBUG.raw()
    assert raw[1:6] == b"\x44\xa1\x01\x38\x22"
    assert code_of(lambda: run(flip(raw, 5), NONDEBUG.now)) == "NITRO_ALG_UNSUPPORTED"  # -35 → -36


def test_unprotected_header_must_be_empty() -> None:
    raw = NONDEBUG.raw()
    assert code_of(lambda: run(rebuild(raw, unprotected={4: b"k"}), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"
    assert code_of(lambda: run(rebuild(raw, unprotected=[]), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


# --- certificate chain -----------------------------------------------------------------------------


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_root_swapped_for_test_only_root(vec: NitroVector) -> None:
    raw = vec.raw()
    bundle = payload_of(raw)["cabundle"]
    swapped = with_payload(raw, cabundle=[der(fake_pki().root), *bundle[1:]])
    expect(lambda: run(swapped, vec.now), "CERT_CHAIN_INVALID", "cabundle[0] is not the pinned AWS")


def test_root_missing_from_bundle() -> None:
    raw = NONDEBUG.raw()
    bundle = payload_of(raw)["cabundle"]
    assert code_of(lambda: run(with_payload(raw, cabundle=bundle[1:]), NONDEBUG.now)) == "CERT_CHAIN_INVALID"


@pytest.mark.parametrize("change", ["reorder", "drop-middle", "duplicate", "flip-intermediate-sig", "other-leaf"])
def test_chain_tampering(change: str) -> None:
    raw = NONDEBUG.raw()
    body = payload_of(raw)
    bundle = list(body["cabundle"])
    fields: dict[str, object] = {}
    if change == "reorder":
        fields["cabundle"] = [bundle[0], bundle[2], bundle[1], bundle[3]]
    elif change == "drop-middle":
        fields["cabundle"] = [bundle[0], bundle[1], bundle[3]]
    elif change == "duplicate":
        fields["cabundle"] = [bundle[0], bundle[0], *bundle[1:]]
    elif change == "flip-intermediate-sig":
        fields["cabundle"] = [bundle[0], bundle[1], flip(bundle[2], len(bundle[2]) - 2), bundle[3]]
    else:
        fields["certificate"] = payload_of(SAN_2023.raw())["certificate"]
    assert code_of(lambda: run(with_payload(raw, **fields), NONDEBUG.now)) == "CERT_CHAIN_INVALID"


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_expired_leaf_at_now(vec: NitroVector) -> None:
    raw = vec.raw()
    # Leaves live ~3 h (manifest); 4 h later the leaf is expired (document age is a policy rule, not checked here).
    later = vec.now + timedelta(hours=4)
    expect(lambda: run(raw, later), "CERT_EXPIRED", "document certificate is not valid at the verification")


def test_now_before_leaf_validity() -> None:
    raw = DEBUG.raw()
    earlier = DEBUG.now - timedelta(hours=1)
    assert code_of(lambda: run(raw, earlier)) == "CERT_EXPIRED"


def test_document_timestamp_outside_leaf_window() -> None:
    # now stays valid for the chain, but the (re-encoded) timestamp predates the leaf: caught before the signature.
    raw = with_payload(NONDEBUG.raw(), timestamp=NONDEBUG.timestamp_ms - 600 * 1000)
    expect(
        lambda: run(raw, NONDEBUG.now), "CERT_EXPIRED", "document certificate is not valid at the document timestamp"
    )


def test_chain_memo_rechecks_validity_every_time() -> None:
    verifier = NitroVerifier()
    raw = NONDEBUG.raw()
    run(raw, NONDEBUG.now, verifier=verifier)
    misses, hits, path_lookups = _CHAINS.misses, _CHAINS.hits, PATHS.hits + PATHS.misses
    run(raw, NONDEBUG.now, verifier=verifier)
    # The repeated bundle is served from the verified-chain memo (no path building, not even a path-memo lookup)...
    assert _CHAINS.misses == misses and _CHAINS.hits == hits + 1
    assert PATHS.hits + PATHS.misses == path_lookups
    # ...and its validity is still judged at every call's time.
    later = NONDEBUG.now + timedelta(hours=4)
    assert code_of(lambda: run(raw, later, verifier=verifier)) == "CERT_EXPIRED"
    # A memoized path is keyed by exact bytes: a flipped intermediate is re-verified, not served from memory.
    bundle = payload_of(raw)["cabundle"]
    tampered = with_payload(raw, cabundle=[bundle[0], bundle[1], flip(bundle[2], len(bundle[2]) - 2), bundle[3]])
    assert code_of(lambda: run(tampered, NONDEBUG.now, verifier=verifier)) == "CERT_CHAIN_INVALID"


# --- freshness -------------------------------------------------------------------------------------


def test_document_from_future() -> None:
    raw = DEBUG.raw()  # leaf valid from 15 s before the timestamp
    earlier = DEBUG.now - timedelta(seconds=5)
    assert code_of(lambda: run(raw, earlier, clock_skew_seconds=0)) == "NITRO_DOCUMENT_FROM_FUTURE"
    run(raw, earlier, clock_skew_seconds=10)


# --- binding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vec", VECTORS, ids=lambda v: v.name)
def test_binding_mismatch_on_real_vectors(vec: NitroVector) -> None:
    binding = ExpectedBinding(nonce=bytes(range(32)))
    assert code_of(lambda: run(vec.raw(), vec.now, binding=binding)) == "NONCE_BINDING_MISMATCH"


# --- CBOR and field rules --------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 2, 10, 100, 1000, 4000, -97, -1])
def test_truncated(cut: int) -> None:
    raw = NONDEBUG.raw()
    assert code_of(lambda: run(raw[:cut], NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


def test_trailing_bytes() -> None:
    raw = NONDEBUG.raw()
    assert code_of(lambda: run(raw + b"\x00", NONDEBUG.now)) == "NITRO_COSE_MALFORMED"
    padded_payload = split(raw)[2] + b"\xf6"  # null after the payload map, inside the signed bstr
    assert code_of(lambda: run(rebuild(raw, payload=padded_payload), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


def test_oversized() -> None:
    raw = NONDEBUG.raw()
    big = with_payload(raw, user_data=None, cabundle=payload_of(raw)["cabundle"] * 7)
    assert len(big) > MAX_DOCUMENT_BYTES
    assert code_of(lambda: run(big, NONDEBUG.now)) == "NITRO_DOCUMENT_TOO_LARGE"
    assert code_of(lambda: run(base64.b64encode(big), NONDEBUG.now)) == "NITRO_DOCUMENT_TOO_LARGE"
    assert code_of(lambda: run(raw + bytes(40000), NONDEBUG.now)) == "NITRO_DOCUMENT_TOO_LARGE"


def test_length_field_claims_more_than_present() -> None:
    # array(4), bstr with an 8-byte length of 2^40: must fail on the length, not allocate it.
    data = b"\x84\x5b" + (1 << 40).to_bytes(8, "big") + b"\x00" * 16
    assert code_of(lambda: run(data, NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


@pytest.mark.parametrize(
    "data",
    [
        b"\x83\x40\xa0\x40",  # array of 3
        b"\x85\x40\xa0\x40\x40\x40",  # array of 5
        b"\x9f\x40\xa0\x40\x40\xff",  # indefinite-length array
        b"\xd8\x12\x84\x40\xa0\x40\x40",  # tag 18 with a 2-byte head (not the canonical one)
        b"\xd3\x84\x40\xa0\x40\x40",  # tag 19
        b"\xa0",  # a map
    ],
)
def test_not_a_cose_sign1(data: bytes) -> None:
    assert code_of(lambda: run(data, NONDEBUG.now)) in {"NITRO_COSE_MALFORMED", "MALFORMED_EVIDENCE"}


def test_garbage_base64() -> None:
    assert code_of(lambda: run(b"not base64 at all!", NONDEBUG.now)) == "MALFORMED_EVIDENCE"
    assert code_of(lambda: run(b"", NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("digest", "SHA256"),
        ("digest", "sha384"),
        ("digest", b"SHA384"),
        ("module_id", ""),
        ("module_id", b"i-0"),
        ("timestamp", -1),
        ("timestamp", 0),
        ("timestamp", "1665651482136"),
        ("timestamp", 1665651482136.0),
        ("certificate", b""),
        ("certificate", b"\x30\x03\x02\x01\x01"),
        ("cabundle", []),
        ("cabundle", b""),
        ("user_data", b"\x00" * 513),
        ("nonce", b"\x00" * 513),
        ("public_key", b""),
        ("public_key", b"\x00" * 1025),
        ("public_key", "text"),
        ("pcrs", {}),
        ("pcrs", []),
    ],
)
def test_field_rules(field: str, value: object) -> None:
    raw = with_payload(NONDEBUG.raw(), **{field: value})
    assert code_of(lambda: run(raw, NONDEBUG.now)) == "NITRO_PAYLOAD_INVALID"


@pytest.mark.parametrize("length", [0, 20, 47, 49, 96])
def test_pcr_of_invalid_length(length: int) -> None:
    raw = NONDEBUG.raw()
    pcrs = dict(payload_of(raw)["pcrs"])
    pcrs[5] = b"\x00" * length
    assert code_of(lambda: run(with_payload(raw, pcrs=pcrs), NONDEBUG.now)) == "NITRO_PAYLOAD_INVALID"


@pytest.mark.parametrize("index", [-1, 32, "0", b"\x00"])
def test_pcr_index_rules(index: object) -> None:
    raw = NONDEBUG.raw()
    pcrs = dict(payload_of(raw)["pcrs"])
    pcrs[index] = pcrs.pop(5)
    assert code_of(lambda: run(with_payload(raw, pcrs=pcrs), NONDEBUG.now)) == "NITRO_PAYLOAD_INVALID"


def test_pcr_index_true_is_not_one() -> None:
    # CBOR true (0xf5) must not pass as index 1: patch key 5 → true in the encoded map (Python dicts can't hold both).
    raw = NONDEBUG.raw()
    payload = split(raw)[2]
    key5 = b"\x05\x58\x30"  # uint 5, bstr(48)
    assert payload.count(key5) == 1
    patched = payload.replace(key5, b"\xf5\x58\x30")
    # true == 1 as a map key, so strict decoding already refuses it as a duplicate of PCR1.
    assert code_of(lambda: run(rebuild(raw, payload=patched), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


@pytest.mark.parametrize("missing_pcr", [0, 1, 2])
def test_pcr0_to_2_required(missing_pcr: int) -> None:
    raw = NONDEBUG.raw()
    pcrs = dict(payload_of(raw)["pcrs"])
    del pcrs[missing_pcr]
    assert code_of(lambda: run(with_payload(raw, pcrs=pcrs), NONDEBUG.now)) == "NITRO_PAYLOAD_INVALID"


@pytest.mark.parametrize("field", ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"])
def test_missing_required_field(field: str) -> None:
    raw = with_payload(NONDEBUG.raw(), **{field: ...})
    assert code_of(lambda: run(raw, NONDEBUG.now)) == "NITRO_PAYLOAD_INVALID"


def test_unknown_payload_key() -> None:
    raw = with_payload(NONDEBUG.raw(), extra=b"x")
    assert code_of(lambda: run(raw, NONDEBUG.now)) == "NITRO_PAYLOAD_INVALID"


def test_optional_fields_may_be_absent_rather_than_null() -> None:
    # Absent optional keys parse (the signature then fails because the bytes changed): field rules accept it.
    raw = with_payload(NONDEBUG.raw(), public_key=..., user_data=...)
    assert code_of(lambda: run(raw, NONDEBUG.now)) == "NITRO_SIGNATURE_INVALID"


def test_duplicate_payload_key() -> None:
    raw = NONDEBUG.raw()
    payload = split(raw)[2]
    # Map header a9 (9 entries) → aa (10) and append a second "digest": "SHA384".
    assert payload[0] == 0xA9
    duplicated = b"\xaa" + payload[1:] + cbor2.dumps("digest") + cbor2.dumps("SHA384")
    assert code_of(lambda: run(rebuild(raw, payload=duplicated), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


@pytest.mark.parametrize(
    "timestamp",
    [
        cbor2.CBORTag(1, 1665651482),  # epoch datetime tag
        cbor2.CBORTag(2, (1665651482136).to_bytes(8, "big")),  # bignum tag
        cbor2.CBORTag(55799, 1665651482136),  # self-described CBOR tag
    ],
    ids=["tag1", "bignum", "self-describe"],
)
def test_tags_inside_payload_are_refused(timestamp: object) -> None:
    raw = with_payload(NONDEBUG.raw(), timestamp=timestamp)
    assert code_of(lambda: run(raw, NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


def test_indefinite_length_payload_item() -> None:
    raw = NONDEBUG.raw()
    payload = split(raw)[2]
    needle = cbor2.dumps("module_id") + cbor2.dumps(payload_of(raw)["module_id"])
    module_id = payload_of(raw)["module_id"].encode()
    indefinite = cbor2.dumps("module_id") + b"\x7f" + cbor2.dumps(module_id.decode()) + b"\xff"
    assert needle in payload and len(module_id) < 256
    changed = payload.replace(needle, indefinite)
    assert code_of(lambda: run(rebuild(raw, payload=changed), NONDEBUG.now)) == "NITRO_COSE_MALFORMED"


# --- envelope --------------------------------------------------------------------------------------


def test_fields_and_extras_are_refused() -> None:
    verifier = NitroVerifier()
    ctx = offline_context(NONDEBUG.now)
    raw = NONDEBUG.raw()
    code = code_of(lambda: verifier.verify(Submission(evidence=raw, fields={"x": 1}), ctx))
    assert code == "INPUT_FIELD_UNKNOWN"
    code = code_of(lambda: verifier.verify(Submission(evidence=raw, extras=(der(fake_pki().root),)), ctx))
    assert code == "INPUT_EXTRA_UNRECOGNIZED"
