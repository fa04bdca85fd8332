"""RS256 signing keys: RFC 7638 thumbprints, PKCS#1 v1.5 signatures PyJWT verifies, the 2048-bit floor,
lazy creation, and rotation with an overlap window beside the ES256 key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.token.keys import local_keyring, local_rsa_signer, rotate_local
from attestation_broker.token.signers import LocalRsaSigner, rsa_public_jwk
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.broker import FIXED_NOW

# RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
    "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5"
    "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_KID = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_rfc7638_example_thumbprint() -> None:
    n = int.from_bytes(jwt.utils.base64url_decode(RFC7638_N), "big")
    jwk = rsa_public_jwk(rsa.RSAPublicNumbers(65537, n).public_key())
    assert jwk == {"e": "AQAB", "kty": "RSA", "n": RFC7638_N, "kid": RFC7638_KID, "use": "sig", "alg": "RS256"}


def test_rsa_keys_under_2048_bits_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the refusal under test
    with pytest.raises(BrokerError) as info:
        LocalRsaSigner(small)
    assert info.value.code.name == "CONFIG_INVALID"


def test_local_rs256_signature_verifies_with_pyjwt(tmp_path: Path) -> None:
    signer = LocalRsaSigner.load_or_create(tmp_path / "k.pem")
    assert (tmp_path / "k.pem").stat().st_mode & 0o077 == 0
    head = jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT"}').decode()
    body = jwt.utils.base64url_encode(b'{"sub":"x"}').decode()
    token = f"{head}.{body}." + jwt.utils.base64url_encode(signer.sign(f"{head}.{body}".encode())).decode()
    assert jwt.decode(token, jwt.PyJWK(signer.public_jwk()).key, algorithms=["RS256"]) == {"sub": "x"}
    other = jwt.PyJWK(LocalRsaSigner.generate().public_jwk()).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other, algorithms=["RS256"])
    assert LocalRsaSigner.load_or_create(tmp_path / "k.pem").key_id == signer.key_id


def test_rsa_key_is_created_only_when_first_used(tmp_path: Path) -> None:
    signer = local_rsa_signer(tmp_path)
    assert not (tmp_path / "signing-key-rs256.pem").exists()
    kid = signer.key_id
    assert (tmp_path / "signing-key-rs256.pem").exists() and local_rsa_signer(tmp_path).key_id == kid


def test_keyring_publishes_both_algorithms_and_signs_with_each(tmp_path: Path) -> None:
    ring = local_keyring(tmp_path, rsa=True)
    assert ring.algorithms == ("ES256", "RS256")
    assert [k["alg"] for k in ring.published(FIXED_NOW)] == ["ES256", "RS256"]
    assert ring.signer_for("RS256").algorithm == "RS256"
    with pytest.raises(BrokerError):
        ring.signer_for("PS256")


def test_rs256_rotation_keeps_the_old_key_for_the_overlap_and_leaves_es256_alone(tmp_path: Path) -> None:
    ring = local_keyring(tmp_path, rsa=True)
    es_kid, rs_kid = ring.active.key_id, ring.signer_for("RS256").key_id
    old, new = rotate_local(tmp_path, now=FIXED_NOW, overlap=timedelta(hours=1), algorithm="RS256")
    assert old == rs_kid and new != rs_kid
    rotated = local_keyring(tmp_path, rsa=True)
    assert rotated.active.key_id == es_kid and rotated.signer_for("RS256").key_id == new
    assert [k["kid"] for k in rotated.published(FIXED_NOW)] == [es_kid, new, old]
    assert [k["kid"] for k in rotated.published(FIXED_NOW + timedelta(hours=2))] == [es_kid, new]


def test_rotating_an_unknown_algorithm_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError) as info:
        rotate_local(tmp_path, now=FIXED_NOW, overlap=timedelta(hours=1), algorithm="HS256")
    assert info.value.code.name == "CONFIG_INVALID"


def test_cli_rotates_the_rs256_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from attestation_broker.cli import main

    before = local_rsa_signer(tmp_path).key_id
    assert main(["keys", "rotate", "--alg", "RS256", "--data-dir", str(tmp_path), "--overlap-hours", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["alg"], out["retired"]) == ("RS256", before) and out["active"] == local_rsa_signer(tmp_path).key_id
