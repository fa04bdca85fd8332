"""Correctly signed documents from a generated test-only PKI: binding, cnf, field rules and chain rules.

The generated root is injected as the verifier's anchor; with the default (pinned AWS) anchor the same
documents must fail CERT_CHAIN_INVALID.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import cbor2
import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.evidence.nitro.claims import public_key_jwk
from attestation_broker.evidence.nitro.kind import NitroVerifier
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from tests.support.errors import code_of, expect

from .fakes import (
    DROP,
    T0,
    build_document,
    der,
    fake_pki,
    make_cert,
    p384,
    payload,
    sign_document,
    with_leaf,
)
from .support import run

BINDING = ExpectedBinding(nonce=bytes.fromhex("a1" * 32), user_data=b"client key hash")


def fake_verifier() -> NitroVerifier:
    return NitroVerifier(anchor=fake_pki().anchor)


def b64url_int(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()


def test_synthetic_document_verifies_with_its_own_anchor_only() -> None:
    document = build_document()
    appraisal = run(document, T0, verifier=fake_verifier())
    assert appraisal.attester_claims["measurement"] == "01" * 48
    assert appraisal.attester_claims["dbgstat"] == "disabled"
    assert appraisal.attester_claims["instance"]["region"] == "eu-west-1"
    assert appraisal.verifier_claims["root"]["sha256"] == fake_pki().anchor.fingerprint
    assert code_of(lambda: run(document, T0)) == "CERT_CHAIN_INVALID"  # the pinned AWS root


def test_nonce_binding_checked() -> None:
    document = build_document(nonce=BINDING.nitro_nonce())
    appraisal = run(document, T0, binding=BINDING, verifier=fake_verifier())
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked"}
    assert appraisal.attester_claims["nitro"]["nonce"] == BINDING.nitro_nonce().hex()


@pytest.mark.parametrize(
    "nonce",
    [
        None,
        b"",
        ExpectedBinding(nonce=bytes.fromhex("a1" * 32)).nitro_nonce(),  # user data left out
        BINDING.nonce,  # the raw nonce instead of SHA-256(nonce ‖ user data)
        BINDING.nitro_nonce() + b"\x00",  # no padding tolerated
        BINDING.nitro_nonce()[:31],
    ],
    ids=["absent", "empty", "no-user-data", "raw-nonce", "padded", "truncated"],
)
def test_nonce_binding_mismatch(nonce: bytes | None) -> None:
    document = build_document(nonce=nonce)
    code = code_of(lambda: run(document, T0, binding=BINDING, verifier=fake_verifier()))
    assert code == "NONCE_BINDING_MISMATCH"


def test_cnf_jwk_for_ec_key_der_and_pem() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    numbers = key.public_numbers()
    for encoding in (serialization.Encoding.DER, serialization.Encoding.PEM):
        spki = key.public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
        appraisal = run(build_document(public_key=spki), T0, verifier=fake_verifier())
        assert appraisal.cnf == {
            "jwk": {"kty": "EC", "crv": "P-256", "x": b64url_int(numbers.x, 32), "y": b64url_int(numbers.y, 32)}
        }
        assert appraisal.verifier_claims["public_key"] == "jwk"
        assert appraisal.attester_claims["nitro"]["public_key"] == spki.hex()


def test_jwk_for_other_key_types() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    spki = rsa_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk = public_key_jwk(spki)
    assert jwk is not None and jwk["kty"] == "RSA" and jwk["e"] == "AQAB"

    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    spki = ed.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = ed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public_key_jwk(spki) == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
    }

    xk = x25519.X25519PrivateKey.generate().public_key()
    spki = xk.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    raw = xk.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public_key_jwk(spki) == {
        "kty": "OKP",
        "crv": "X25519",
        "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
    }


@pytest.mark.parametrize("value", [b"my super secret key", b"\x30\x00", bytes(32), b"-----BEGIN PUBLIC KEY-----\nx\n"])
def test_unparsable_public_key_gets_digest_not_cnf(value: bytes) -> None:
    appraisal = run(build_document(public_key=value), T0, verifier=fake_verifier())
    assert appraisal.cnf is None
    assert appraisal.verifier_claims["public_key"] == "unparsable"
    assert appraisal.attester_claims["nitro"]["public_key_sha256"] == hashes_sha256(value)


def hashes_sha256(value: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(value)
    return digest.finalize().hex()


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"pcrs": {0: b"\x01" * 48, 1: b"\x02" * 48, 2: b"\x03" * 47}}, "NITRO_PAYLOAD_INVALID"),
        ({"pcrs": {0: b"\x01" * 32, 1: b"\x02" * 64, 2: b"\x03" * 48}}, None),  # 32/48/64 all legal
        ({"digest": "SHA512"}, "NITRO_PAYLOAD_INVALID"),
        ({"module_id": DROP}, "NITRO_PAYLOAD_INVALID"),
        ({"public_key": DROP, "user_data": DROP, "nonce": DROP}, None),  # optional keys may be absent
        ({"user_data": b"\x00" * 512, "nonce": b"\x00" * 512}, None),  # at the limits
        ({"user_data": b"\x00" * 513}, "NITRO_PAYLOAD_INVALID"),
    ],
)
def test_field_rules_on_correctly_signed_documents(override: dict[str, Any], code: str | None) -> None:
    document = build_document(**override)
    if code is None:
        run(document, T0, verifier=fake_verifier())
    else:
        assert code_of(lambda: run(document, T0, verifier=fake_verifier())) == code


def test_debug_detection_any_of_pcr0_to_2_zero() -> None:
    for index in (0, 1, 2):
        pcrs = {i: bytes([i + 1]) * 48 for i in range(16)}
        pcrs[index] = bytes(48)
        appraisal = run(build_document(pcrs=pcrs), T0, verifier=fake_verifier())
        assert appraisal.attester_claims["dbgstat"] == "enabled", index
    pcrs = {i: bytes([i + 1]) * 48 for i in range(16)}
    pcrs[3] = bytes(48)
    assert run(build_document(pcrs=pcrs), T0, verifier=fake_verifier()).attester_claims["dbgstat"] == "disabled"


def test_tagged_and_untagged_both_verify() -> None:
    document = build_document()
    run(b"\xd2" + document, T0, verifier=fake_verifier())
    assert code_of(lambda: run(b"\xd2\xd2" + document, T0, verifier=fake_verifier())) == "NITRO_COSE_MALFORMED"


# --- chain rules -----------------------------------------------------------------------------------


def _leaf(**kwargs: object) -> tuple[object, ec.EllipticCurvePrivateKey]:
    pki = fake_pki()
    key = kwargs.pop("key", None) or p384()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = make_cert(
        "leaf",
        key,
        "test-only nitro intermediate",
        pki.inter_key,
        not_before=T0 - timedelta(minutes=1),
        not_after=T0 + timedelta(hours=3),
        **kwargs,  # type: ignore[arg-type]
    )
    return cert, key


def _document_with_leaf(cert: object, key: ec.EllipticCurvePrivateKey) -> bytes:
    pki = with_leaf(fake_pki(), cert, key)  # type: ignore[arg-type]
    return sign_document(key, cbor2.dumps(payload(pki)))


def test_leaf_that_is_a_ca_is_refused() -> None:
    cert, key = _leaf(ca=True, path_length=0)
    expect(
        lambda: run(_document_with_leaf(cert, key), T0, verifier=fake_verifier()),
        "CERT_CHAIN_INVALID",
        "document certificate is a CA",
    )


def test_leaf_signed_with_sha256_is_refused() -> None:
    cert, key = _leaf(ca=False, hash_alg=hashes.SHA256())
    expect(
        lambda: run(_document_with_leaf(cert, key), T0, verifier=fake_verifier()),
        "CERT_CHAIN_INVALID",
        "not signed with ECDSA-SHA384",
    )


def test_leaf_with_p256_key_is_refused() -> None:
    pki = fake_pki()
    key256 = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(
        "leaf",
        key256,
        "test-only nitro intermediate",
        pki.inter_key,
        ca=False,
        not_before=T0 - timedelta(minutes=1),
        not_after=T0 + timedelta(hours=3),
    )
    body = payload(pki, certificate=der(cert))
    document = sign_document(pki.leaf_key, cbor2.dumps(body))
    expect(lambda: run(document, T0, verifier=fake_verifier()), "CERT_CHAIN_INVALID", "key is not ECDSA P-384")


def test_intermediate_without_key_cert_sign_is_refused() -> None:
    pki = fake_pki()
    inter_key = p384()
    inter = make_cert(
        "test-only nitro intermediate",
        inter_key,
        "test-only nitro root",
        pki.root_key,
        ca=True,
        path_length=0,
        key_cert_sign=False,
        not_before=T0 - timedelta(days=1),
        not_after=T0 + timedelta(days=5),
    )
    leaf = make_cert(
        "leaf",
        pki.leaf_key,
        "test-only nitro intermediate",
        inter_key,
        ca=False,
        not_before=T0 - timedelta(minutes=1),
        not_after=T0 + timedelta(hours=3),
    )
    body = payload(pki, cabundle=[der(pki.root), der(inter)], certificate=der(leaf))
    document = sign_document(pki.leaf_key, cbor2.dumps(body))
    # The shared path builder refuses a CA without keyCertSign (trust/chain.py CA policy).
    expect(lambda: run(document, T0, verifier=fake_verifier()), "CERT_CHAIN_INVALID", "Nitro cabundle does not verify")


def test_path_length_constraint() -> None:
    pki = fake_pki()  # intermediate has pathLen 0: no further CA may follow it
    sub_key = p384()
    sub = make_cert(
        "sub-ca",
        sub_key,
        "test-only nitro intermediate",
        pki.inter_key,
        ca=True,
        path_length=0,
        not_before=T0 - timedelta(days=1),
        not_after=T0 + timedelta(days=2),
    )
    leaf = make_cert(
        "leaf",
        pki.leaf_key,
        "sub-ca",
        sub_key,
        ca=False,
        not_before=T0 - timedelta(minutes=1),
        not_after=T0 + timedelta(hours=3),
    )
    body = payload(pki, cabundle=[*pki.bundle(), der(sub)], certificate=der(leaf))
    document = sign_document(pki.leaf_key, cbor2.dumps(body))
    expect(
        lambda: run(document, T0, verifier=fake_verifier()),
        "CERT_CHAIN_INVALID",
        "Nitro cabundle does not verify",  # pathLenConstraint, enforced by the shared path builder
    )


def test_document_signed_by_other_key_than_certificate() -> None:
    pki = fake_pki()
    document = sign_document(p384(), cbor2.dumps(payload(pki)))
    assert code_of(lambda: run(document, T0, verifier=fake_verifier())) == "NITRO_SIGNATURE_INVALID"


def test_expired_intermediate_at_now() -> None:
    # Intermediate valid 5 days; leaf only 3 h: push both now and timestamp past the intermediate.
    later = T0 + timedelta(days=6)
    document = build_document(timestamp=int(later.timestamp() * 1000))
    expect(lambda: run(document, later, verifier=fake_verifier()), "CERT_EXPIRED", "cabundle[1] is not valid")
