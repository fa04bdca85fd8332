"""RS256 KmsSigner (RSA_2048, RSASSA_PKCS1_V1_5_SHA_256) against moto KMS over HTTP, and an RS256 broker
keyring built from BROKER_SIGNER_RS256=kms:<arn> whose federation tokens verify with PyJWT via /jwks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.aws.kms import KmsSigner
from attestation_broker.bootstrap import build_rsa_signer
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.token.keys import KeyRing
from attestation_broker.token.signers import LocalSigner

from tests.support.broker import make_harness
from tests.support.federation import AZURE_AUDIENCE, attest, exchange


@pytest.fixture
def rsa_key_id(kms: Any) -> str:
    response = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY", Description="broker RS256 test")
    return str(response["KeyMetadata"]["Arn"])


def test_kms_rs256_signature_verifies_with_the_published_jwk_and_with_kms(kms: Any, rsa_key_id: str) -> None:
    signer = KmsSigner(rsa_key_id, client=kms, algorithm="RS256")
    jwk = signer.public_jwk()
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert len(jwt.utils.base64url_decode(jwk["n"])) == 256  # 2048-bit modulus, no leading zero octet
    message = b"header.payload"
    signature = signer.sign(message)
    assert len(signature) == 256
    verdict = kms.verify(
        KeyId=rsa_key_id,
        Message=message,
        MessageType="RAW",
        Signature=signature,
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )
    assert verdict["SignatureValid"] is True
    head = jwt.utils.base64url_encode(b'{"alg":"RS256","kid":"%s"}' % jwk["kid"].encode()).decode()
    body = jwt.utils.base64url_encode(b'{"sub":"x"}').decode()
    signed = f"{head}.{body}." + jwt.utils.base64url_encode(signer.sign(f"{head}.{body}".encode())).decode()
    assert jwt.decode(signed, jwt.PyJWK(jwk).key, algorithms=["RS256"]) == {"sub": "x"}


def test_kms_key_of_the_wrong_spec_is_a_config_error(kms: Any, signing_key_id: str, rsa_key_id: str) -> None:
    with pytest.raises(BrokerError) as info:
        KmsSigner(signing_key_id, client=kms, algorithm="RS256").public_jwk()
    assert info.value.code.name == "CONFIG_INVALID"
    with pytest.raises(BrokerError) as info:
        KmsSigner(rsa_key_id, client=kms, algorithm="ES256").public_jwk()
    assert info.value.code.name == "CONFIG_INVALID"


def test_kms_rs256_federation_token_verifies_through_jwks(
    tmp_path: Path, moto_endpoint: str, kms: Any, rsa_key_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    rsa = build_rsa_signer(Settings(signer="local", signer_rs256=f"kms:{rsa_key_id}"))
    assert rsa is not None and rsa.algorithm == "RS256"
    ring = KeyRing(LocalSigner.generate(), extra=(rsa,))
    h = make_harness(tmp_path, federation_audiences=(AZURE_AUDIENCE,))
    h.broker.tokens.keyring = ring
    resp = exchange(h, attest(h)["token"], AZURE_AUDIENCE)
    assert resp.status == 200, resp.body
    token = resp.json()["access_token"]
    jwks = jwt.PyJWKSet.from_dict(h.broker.jwks())
    key = jwks[jwt.get_unverified_header(token)["kid"]].key
    claims = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=AZURE_AUDIENCE,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == "https://broker.test"
