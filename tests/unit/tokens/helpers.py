"""Shared fixtures for the upstream-token tests: real vectors, replay routes, and TEST-ONLY keys.

Test-only keys and certificate chains are generated here (never real issuers' keys) for the cases the
vectors cannot cover (MANIFEST-vtpm-cloud.md "Not found"): nonce-bound tokens, MAA x5c key sets, TDX and
Trusted Launch claim sets, attacker-signed tokens, PEM-encoded x5c entries.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.replay import ReplayServer
from tests.support.vectors import vector

GOOGLE_ISS = "https://confidentialcomputing.googleapis.com"
GOOGLE_JWKS_URI = (
    "https://www.googleapis.com/service_accounts/v1/metadata/jwk/signer@confidentialspace-sign.iam.gserviceaccount.com"
)
GOOGLE_JWKS_PATH = "/gapi/service_accounts/v1/metadata/jwk/signer@confidentialspace-sign.iam.gserviceaccount.com"
GOOGLE_DISCOVERY_PATH = "/gca/.well-known/openid-configuration"
WEU = "https://sharedweu.weu.attest.azure.net"
EUS2 = "https://sharedeus2.eus2.attest.azure.net"

OIDC_TOKEN = "gcp/cs-oidc-token-flare-2024-11-03.jwt"
OIDC_JWKS = "gcp/cs-oidc-jwks-kid-4676c490.json"
OIDC_KID = "4676c490dc43829636595442e93cdc5d27aaa279"
OIDC_IAT = 1730678012
PKI_TOKEN = "gcp/cs-pki-token-oak-2025-06-23.jwt"
PKI_BAD_SIG = "gcp/cs-pki-token-oak-2025-06-23.invalid-signature.jwt"
PKI_IAT = 1750688551
MAA_WEU = "azure/maa-cvm-sevsnp-sharedweu-2023-03-30.jwt"
MAA_WEU_IAT = 1680173374
MAA_EUS2 = "azure/maa-cvm-sevsnp-sharedeus2-2024-12-20.jwt"
MAA_EUS2_IAT = 1734719094
MAA_TVM = "azure/maa-tvm-sharedeus2-2022-04-14.jwt"
MAA_TVM_IAT = 1649979780
MAA_KEYS = "azure/maa-signing-keys-by-jku.json"


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def token_of(name: str) -> str:
    return vector(name).decode("ascii").strip()


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


# --- replay routes -----------------------------------------------------------------------------------


def google_override(replay: ReplayServer) -> dict[str, str]:
    return {GOOGLE_ISS: replay.base_url + "/gca", "https://www.googleapis.com": replay.base_url + "/gapi"}


def serve_google(replay: ReplayServer, jwks: bytes | None = None, *, issuer: str = GOOGLE_ISS) -> dict[str, str]:
    discovery = {"issuer": issuer, "jwks_uri": GOOGLE_JWKS_URI, "id_token_signing_alg_values_supported": ["RS256"]}
    replay.add(GOOGLE_DISCOVERY_PATH, json.dumps(discovery).encode())
    replay.add(GOOGLE_JWKS_PATH, jwks if jwks is not None else vector(OIDC_JWKS))
    return google_override(replay)


def maa_keys(jku: str) -> bytes:
    return json.dumps(json.loads(vector(MAA_KEYS))[jku + "/certs"]).encode()


def maa_override(replay: ReplayServer) -> dict[str, str]:
    return {WEU: replay.base_url + "/weu", EUS2: replay.base_url + "/eus2"}


def serve_maa(replay: ReplayServer, issuer: str, body: bytes | None = None) -> dict[str, str]:
    path = "/weu/certs" if issuer == WEU else "/eus2/certs"
    replay.add(path, body if body is not None else maa_keys(issuer))
    return maa_override(replay)


# --- test-only keys -----------------------------------------------------------------------------------


@cache
def fresh_key(label: str) -> rsa.RSAPrivateKey:
    """A TEST-ONLY RSA-2048 key per label (cached: generation is slow)."""
    del label
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "e": b64url(numbers.e.to_bytes(3, "big")),
        "n": b64url(numbers.n.to_bytes(256, "big")),
        **extra,
    }


def jwks_of(*jwks: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(jwks)}).encode()


def mint(payload: dict[str, Any], key: rsa.RSAPrivateKey, headers: dict[str, Any]) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def resign(token: str, key: rsa.RSAPrivateKey, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """A real token's payload (optionally changed) signed with a TEST key."""
    real_header, payload = unverified(token)
    payload.update(claims)
    hdr = {k: v for k, v in (header if header is not None else real_header).items() if k not in ("alg", "typ")}
    return mint(payload, key, hdr)


def self_signed(
    key: rsa.RSAPrivateKey, cn: str, *, days: int = 3650, start: datetime | None = None
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    begin = start or datetime(2020, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin)
        .not_valid_after(begin + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # keyCertSign like every real vendor root: the path builder refuses a CA without keyUsage
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )


def issue(
    issuer_key: rsa.RSAPrivateKey,
    issuer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    cn: str,
    *,
    ca: bool,
    start: datetime | None = None,
    days: int = 3650,
) -> x509.Certificate:
    begin = start or datetime(2020, 1, 1, tzinfo=UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(begin)
        .not_valid_after(begin + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def pem_text(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
