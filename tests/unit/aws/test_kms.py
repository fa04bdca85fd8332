"""KmsSigner against moto KMS over HTTP: ES256 JWTs that PyJWT verifies with the published JWK."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from attestation_broker.aws.kms import KMS_RAW_MESSAGE_LIMIT, KmsSigner
from attestation_broker.token.signers import b64url
from botocore.stub import Stubber
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.aws.conftest import client, unreachable_endpoint


def _jwt(signer: KmsSigner, claims: dict[str, Any]) -> str:
    header = {"alg": "ES256", "typ": "JWT", "kid": signer.key_id}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + b64url(signer.sign(signing_input.encode()))


def test_kms_signed_jwt_verifies_with_published_jwk(kms: Any, signing_key_id: str) -> None:
    signer = KmsSigner(signing_key_id, client=kms)
    jwk = signer.public_jwk()
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256" and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert jwk["kid"] == signer.key_id and len(signer.key_id) == 43  # base64url SHA-256 thumbprint
    token = _jwt(signer, {"sub": "cvm", "ear_status": "affirming"})
    assert jwt.get_unverified_header(token)["kid"] == signer.key_id
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key=key, algorithms=["ES256"]) == {"sub": "cvm", "ear_status": "affirming"}
    # A different key must not verify it (the test can fail).
    other = jwt.PyJWK(
        KmsSigner(
            kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"], client=kms
        ).public_jwk()
    ).key
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, key=other, algorithms=["ES256"])


def test_signature_is_raw_jose_and_matches_kms_verify(kms: Any, signing_key_id: str) -> None:
    signer = KmsSigner(signing_key_id, client=kms)
    message = b"header.payload"
    signature = signer.sign(message)
    assert len(signature) == 64
    public = jwt.PyJWK(signer.public_jwk()).key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    public.verify(der, message, ec.ECDSA(hashes.SHA256()))
    verdict = kms.verify(
        KeyId=signing_key_id, Message=message, MessageType="RAW", Signature=der, SigningAlgorithm="ECDSA_SHA_256"
    )
    assert verdict["SignatureValid"] is True


@pytest.mark.parametrize(("size", "message_type"), [(100, "RAW"), (2900, "RAW"), (3100, "DIGEST"), (65536, "DIGEST")])
def test_signing_inputs_on_both_sides_of_the_raw_limit_verify(
    kms: Any, signing_key_id: str, size: int, message_type: str
) -> None:
    """Up to 4096 bytes KMS hashes (RAW); above, the SHA-256 digest is sent (DIGEST). Same JWS either way."""
    sent: list[str] = []
    kms.meta.events.register("provide-client-params.kms.Sign", lambda params, **_: sent.append(params["MessageType"]))
    signer = KmsSigner(signing_key_id, client=kms)
    token = _jwt(signer, {"pad": "x" * size})
    assert sent == [message_type]
    assert (len(token.rsplit(".", 1)[0]) <= KMS_RAW_MESSAGE_LIMIT) == (message_type == "RAW")
    assert jwt.decode(token, key=jwt.PyJWK(signer.public_jwk()).key, algorithms=["ES256"])["pad"] == "x" * size


def test_raw_limit_is_enforced_by_the_kms_stand_in(kms: Any, signing_key_id: str) -> None:
    """The moto patch must reject what AWS rejects, or the test above proves nothing."""
    with pytest.raises(Exception, match="4096"):
        kms.sign(KeyId=signing_key_id, Message=b"x" * 4097, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")


@pytest.mark.parametrize("operation", ["sign", "public_jwk"])
def test_unreachable_kms_is_signer_unavailable(aws_env: None, operation: str) -> None:
    signer = KmsSigner("alias/broker", client=client("kms", unreachable_endpoint()))
    with pytest.raises(Exception) as info:
        signer.sign(b"x") if operation == "sign" else signer.public_jwk()
    assert info.value.code.name == "SIGNER_UNAVAILABLE"  # type: ignore[attr-defined]
    assert info.value.status == 503  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "operation"),
    [("ThrottlingException", "sign"), ("AccessDeniedException", "sign"), ("DisabledException", "get_public_key")],
)
def test_kms_service_errors_are_signer_unavailable(aws_env: None, error: str, operation: str) -> None:
    kms = client("kms", "http://127.0.0.1:9")
    with Stubber(kms) as stub:
        stub.add_client_error(operation, service_error_code=error, http_status_code=400)
        signer = KmsSigner("k", client=kms)
        with pytest.raises(Exception) as info:
            signer.sign(b"x") if operation == "sign" else signer.public_jwk()
    assert info.value.code.name == "SIGNER_UNAVAILABLE"  # type: ignore[attr-defined]
    assert error in str(info.value)


def test_unknown_key_is_signer_unavailable(kms: Any) -> None:
    signer = KmsSigner("arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000", client=kms)
    with pytest.raises(Exception) as info:
        signer.sign(b"x")
    assert info.value.code.name == "SIGNER_UNAVAILABLE"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("spec", "usage"), [("RSA_2048", "SIGN_VERIFY"), ("ECC_SECG_P256K1", "SIGN_VERIFY")])
def test_wrong_key_type_is_config_invalid(kms: Any, spec: str, usage: str) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    with pytest.raises(Exception) as info:
        KmsSigner(key_id, client=kms).public_jwk()
    assert info.value.code.name == "CONFIG_INVALID"  # type: ignore[attr-defined]
