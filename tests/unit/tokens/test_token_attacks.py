"""Token attacks against both upstream-token kinds, each asserting its error code (RFC 8725 §2 threats).

Attacker keys and certificates are TEST-ONLY keys generated in helpers.py. The network guard in
tests/conftest.py turns any attempt to reach a non-loopback host (e.g. an attacker's jku) into a RuntimeError,
so "must not fetch" is enforced, and ``replay.requests`` shows exactly what was fetched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.azure_token.kind import AzureTokenVerifier
from attestation_broker.evidence.gcp_token.kind import GcpTokenVerifier
from attestation_broker.evidence.jose.jws import MAX_TOKEN_BYTES
from attestation_broker.evidence.jose.keys import parse_jwks
from attestation_broker.verifier import Submission

from tests.support.context import http_context
from tests.support.errors import raised_code
from tests.support.replay import ReplayServer
from tests.support.vectors import vector
from tests.unit.tokens.helpers import (
    EUS2,
    GOOGLE_DISCOVERY_PATH,
    GOOGLE_ISS,
    GOOGLE_JWKS_PATH,
    MAA_EUS2,
    MAA_EUS2_IAT,
    MAA_WEU,
    MAA_WEU_IAT,
    OIDC_IAT,
    OIDC_JWKS,
    OIDC_KID,
    OIDC_TOKEN,
    WEU,
    at,
    b64url,
    b64url_json,
    der_b64,
    fresh_key,
    jwk_of,
    jwks_of,
    maa_keys,
    mint,
    public_pem,
    resign,
    self_signed,
    serve_google,
    serve_maa,
    token_of,
    unverified,
)

ATTACKER = "https://attacker.example"


@dataclass
class Case:
    name: str
    token: str
    now: float
    kid: str
    issuer: str
    key_paths: list[str]
    make: Callable[[ReplayServer], Any]
    jwks: Callable[[], bytes]

    def verifier(self, replay: ReplayServer) -> Any:
        return self.make(replay)


GCP = Case(
    name="gcp-token",
    token=OIDC_TOKEN,
    now=OIDC_IAT + 5,
    kid=OIDC_KID,
    issuer=GOOGLE_ISS,
    key_paths=[GOOGLE_DISCOVERY_PATH, GOOGLE_JWKS_PATH],
    make=lambda r: GcpTokenVerifier(key_url_override=serve_google(r)),
    jwks=lambda: vector(OIDC_JWKS),
)
AZURE = Case(
    name="azure-token",
    token=MAA_EUS2,
    now=MAA_EUS2_IAT + 5,
    kid="J0pAPdfXXHqWWimgrH853wMIdh5/fLe1z6uSXYPXCa0=",
    issuer=EUS2,
    key_paths=["/eus2/certs"],
    make=lambda r: AzureTokenVerifier(key_url_override=serve_maa(r, EUS2)),
    jwks=lambda: maa_keys(EUS2),
)
CASES = [GCP, AZURE]
IDS = [c.name for c in CASES]


def _fails(case: Case, replay: ReplayServer, token: str | bytes, now: float | None = None, **kw: Any) -> str:
    verifier = case.verifier(replay)
    data = token.encode() if isinstance(token, str) else token
    binding = kw.pop("binding", None)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(data, binding=binding), http_context(at(case.now if now is None else now), **kw))
    return raised_code(exc)


def _real_key_pem(case: Case) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = parse_jwks(case.jwks())[case.kid].key
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _compact(header: dict[str, Any], payload_segment: str, signature: bytes) -> str:
    return f"{b64url_json(header)}.{payload_segment}.{b64url(signature)}"


# --- algorithm confusion ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("alg", ["none", "None", "NONE", ""])
def test_alg_none(replay: ReplayServer, case: Case, alg: str) -> None:
    real = token_of(case.token)
    token = _compact({"alg": alg, "kid": case.kid, "typ": "JWT"}, real.split(".")[1], b"")
    assert _fails(case, replay, token) == "UPSTREAM_TOKEN_ALG_REJECTED"
    assert replay.requests == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hs256_signed_with_the_public_key(replay: ReplayServer, case: Case) -> None:
    real = token_of(case.token)
    header = {"alg": "HS256", "kid": case.kid, "typ": "JWT"}
    signing_input = f"{b64url_json(header)}.{real.split('.')[1]}".encode()
    mac = hmac.new(_real_key_pem(case), signing_input, hashlib.sha256).digest()
    token = signing_input.decode() + "." + b64url(mac)
    assert _fails(case, replay, token) == "UPSTREAM_TOKEN_ALG_REJECTED"
    assert replay.requests == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "EdDSA"])
def test_algorithms_outside_the_allow_list(replay: ReplayServer, case: Case, alg: str) -> None:
    real = token_of(case.token)
    token = _compact({"alg": alg, "kid": case.kid}, real.split(".")[1], b"\x00" * 64)
    assert _fails(case, replay, token) == "UPSTREAM_TOKEN_ALG_REJECTED"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_crit_header_rejected(replay: ReplayServer, case: Case) -> None:
    token = resign(token_of(case.token), fresh_key("attacker"), header={"kid": case.kid, "crit": ["exp"]})
    assert _fails(case, replay, token) == "UPSTREAM_TOKEN_HEADER_REJECTED"


# --- key-location and self-vouching headers -----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("kid_choice", ["attacker-kid", "real-kid"])
def test_jku_and_x5u_to_attacker_host_are_never_fetched(replay: ReplayServer, case: Case, kid_choice: str) -> None:
    kid = "attacker-kid" if kid_choice == "attacker-kid" else case.kid
    header = {"kid": kid, "jku": ATTACKER + "/jwks.json", "x5u": ATTACKER + "/cert.pem"}
    token = resign(token_of(case.token), fresh_key("attacker"), header=header)
    got = _fails(case, replay, token)
    assert got == ("UPSTREAM_TOKEN_KEY_UNKNOWN" if kid_choice == "attacker-kid" else "UPSTREAM_TOKEN_SIGNATURE_INVALID")
    assert set(replay.requests) == set(case.key_paths)  # only the pinned issuer's endpoints


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("kid_choice", ["attacker-kid", "real-kid"])
def test_self_vouching_jwk_header(replay: ReplayServer, case: Case, kid_choice: str) -> None:
    attacker = fresh_key("attacker")
    kid = "attacker-kid" if kid_choice == "attacker-kid" else case.kid
    token = resign(token_of(case.token), attacker, header={"kid": kid, "jwk": jwk_of(attacker, kid)})
    got = _fails(case, replay, token)
    assert got == ("UPSTREAM_TOKEN_KEY_UNKNOWN" if kid_choice == "attacker-kid" else "UPSTREAM_TOKEN_SIGNATURE_INVALID")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_self_vouching_x5c_header(replay: ReplayServer, case: Case) -> None:
    """An attacker's self-signed cert that even copies the Confidential Space root's subject name."""
    from attestation_broker.evidence.gcp_token.pki import pinned_roots
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    attacker = fresh_key("attacker")
    (real_root,) = pinned_roots()
    cert = (
        x509.CertificateBuilder()
        .subject_name(real_root.subject)
        .issuer_name(real_root.subject)
        .public_key(attacker.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(real_root.not_valid_before_utc)
        .not_valid_after(real_root.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(attacker, hashes.SHA256())
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Confidential Space Root CA"
    leaf_of_fake = self_signed(attacker, "attacker leaf")
    for chain in ([der_b64(cert)], [der_b64(leaf_of_fake), der_b64(cert)]):
        token = resign(token_of(case.token), attacker, header={"kid": case.kid, "x5c": chain})
        got = _fails(case, replay, token)
        # GCP: x5c selects the PKI path and must chain to the pinned root; Azure ignores x5c headers.
        assert got == ("CERT_CHAIN_INVALID" if case is GCP else "UPSTREAM_TOKEN_SIGNATURE_INVALID")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_unknown_kid(replay: ReplayServer, case: Case) -> None:
    token = resign(token_of(case.token), fresh_key("attacker"), header={"kid": "no-such-kid"})
    assert _fails(case, replay, token) == "UPSTREAM_TOKEN_KEY_UNKNOWN"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_kid(replay: ReplayServer, case: Case) -> None:
    token = resign(token_of(case.token), fresh_key("attacker"), header={})
    assert _fails(case, replay, token) == "TOKEN_MALFORMED"


# --- issuer ----------------------------------------------------------------------------------------------------


def test_azure_wrong_issuer_sharing_the_pinned_issuers_key(replay: ReplayServer) -> None:
    """A custom MAA instance signing with a key the pinned shared instance also publishes."""
    key = fresh_key("shared-maa-key")
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2, jwks_of(jwk_of(key, "shared-kid"))))
    evil = "https://evilcustom.eus2.attest.azure.net"
    token = resign(token_of(MAA_EUS2), key, header={"kid": "shared-kid", "jku": EUS2 + "/certs"}, iss=evil)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(token.encode()), http_context(at(MAA_EUS2_IAT + 5)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_ISSUER_UNTRUSTED"
    assert replay.requests == []
    good = resign(token_of(MAA_EUS2), key, header={"kid": "shared-kid"})  # same key, pinned iss: accepted
    assert verifier.verify(Submission(good.encode()), http_context(at(MAA_EUS2_IAT + 5))).attester_claims


def test_azure_kid_of_another_issuer_is_not_borrowed(replay: ReplayServer) -> None:
    """The real weu token, with weu's /certs serving only eus2's keys: the kid is unknown for weu."""
    serve_maa(replay, WEU, maa_keys(EUS2))
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2))
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(vector(MAA_WEU)), http_context(at(MAA_WEU_IAT + 5)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_KEY_UNKNOWN"
    assert set(replay.requests) == {"/weu/certs"}


def test_azure_real_token_from_unpinned_instance(replay: ReplayServer) -> None:
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, WEU))
    with pytest.raises(BrokerError) as exc:
        verifier.verify(
            Submission(vector(MAA_WEU)), http_context(at(MAA_WEU_IAT + 5), settings=Settings(maa_issuers=(EUS2,)))
        )
    assert raised_code(exc) == "UPSTREAM_TOKEN_ISSUER_UNTRUSTED"
    assert replay.requests == []


def test_gcp_lookalike_issuer(replay: ReplayServer) -> None:
    token = resign(token_of(OIDC_TOKEN), fresh_key("attacker"), header={"kid": OIDC_KID}, iss=GOOGLE_ISS + ".evil.io")
    assert _fails(GCP, replay, token) == "UPSTREAM_TOKEN_ISSUER_UNTRUSTED"
    assert replay.requests == []


# --- time, audience, nonce ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_expired_and_not_yet_valid_real_tokens(replay: ReplayServer, case: Case) -> None:
    _, payload = unverified(token_of(case.token))
    assert _fails(case, replay, vector(case.token), now=payload["exp"] + 60) == "TOKEN_EXPIRED"
    assert _fails(case, replay, vector(case.token), now=payload["iat"] - 61) == "UPSTREAM_TOKEN_NOT_YET_VALID"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nbf_in_future_of_signed_token(replay: ReplayServer, case: Case) -> None:
    key = fresh_key("signer")
    jwks = jwks_of(jwk_of(key, "k1"))
    verifier = (
        GcpTokenVerifier(key_url_override=serve_google(replay, jwks))
        if case is GCP
        else AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2, jwks))
    )
    _, payload = unverified(token_of(case.token))
    token = resign(token_of(case.token), key, header={"kid": "k1"}, nbf=payload["iat"] + 600)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(token.encode()), http_context(at(payload["iat"] + 5)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_NOT_YET_VALID"


def _signed_verifier(case: Case, replay: ReplayServer) -> tuple[Any, Any]:
    key = fresh_key("signer")
    jwks = jwks_of(jwk_of(key, "k1"))
    if case is GCP:
        return GcpTokenVerifier(key_url_override=serve_google(replay, jwks)), key
    return AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2, jwks)), key


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_audience(replay: ReplayServer, case: Case) -> None:
    verifier, key = _signed_verifier(case, replay)
    token = resign(token_of(case.token), key, header={"kid": "k1"}, aud=["https://someone-else.example"])
    settings = Settings(upstream_audiences=("attestation-broker",))
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(token.encode()), http_context(at(case.now), settings=settings))
    assert raised_code(exc) == "UPSTREAM_TOKEN_AUDIENCE_MISMATCH"
    ok = resign(token_of(case.token), key, header={"kid": "k1"}, aud="attestation-broker")
    assert verifier.verify(Submission(ok.encode()), http_context(at(case.now), settings=settings)).verifier_claims[
        "upstream"
    ]["audience_checked"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_nonce_replay_is_binding_mismatch(replay: ReplayServer, case: Case) -> None:
    """A token bound to an earlier challenge's nonce presented for a new challenge."""
    verifier, key = _signed_verifier(case, replay)
    old, new = b"\x01" * 32, b"\x02" * 32
    if case is GCP:
        token = resign(token_of(case.token), key, header={"kid": "k1"}, eat_nonce=old.hex())
    else:
        _, payload = unverified(token_of(case.token))
        runtime = dict(payload["x-ms-runtime"], **{"client-payload": {"nonce": old.hex()}})
        token = resign(token_of(case.token), key, header={"kid": "k1"}, **{"x-ms-runtime": runtime})
    ctx = http_context(at(case.now))
    assert verifier.verify(Submission(token.encode(), binding=ExpectedBinding(old)), ctx).verifier_claims["bindings"]
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(token.encode(), binding=ExpectedBinding(new)), ctx)
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


# --- tampering, size, malformed input ------------------------------------------------------------------------------


def _flip(segment: str, index: int) -> str:
    char = segment[index]
    return segment[:index] + ("A" if char != "A" else "B") + segment[index + 1 :]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("region", ["header", "payload", "signature"])
def test_tampered_real_token(replay: ReplayServer, case: Case, region: str) -> None:
    header, payload, signature = token_of(case.token).split(".")
    if region == "header":
        real_header, _ = unverified(token_of(case.token))
        header = b64url_json(dict(real_header, extra="x"))
    elif region == "payload":
        _, real_payload = unverified(token_of(case.token))
        real_payload["exp"] = real_payload["exp"] + 86400 * 365
        payload = b64url_json(real_payload)
    else:
        signature = _flip(signature, len(signature) // 2)
    assert _fails(case, replay, f"{header}.{payload}.{signature}") == "UPSTREAM_TOKEN_SIGNATURE_INVALID"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_oversized_token(replay: ReplayServer, case: Case) -> None:
    assert _fails(case, replay, b"a" * (MAX_TOKEN_BYTES + 1)) == "UPSTREAM_TOKEN_TOO_LARGE"
    big = resign(token_of(case.token), fresh_key("attacker"), header={"kid": case.kid}, pad="x" * MAX_TOKEN_BYTES)
    verifier = case.verifier(replay)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(big.encode()), http_context(at(case.now)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_TOO_LARGE" and exc.value.status == 413
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(b"", fields={"token": big}), http_context(at(case.now)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_TOO_LARGE"
    assert replay.requests == []


H = b64url_json({"alg": "RS256", "kid": "k"})
P = b64url_json({"iss": GOOGLE_ISS})
DUP_HEADER = b64url(b'{"alg":"RS256","alg":"none"}')
DUP_PAYLOAD = b64url(b'{"iss":"a","iss":"b"}')
BAD_UTF8 = b64url(b"\xff\xfe")
MALFORMED = {
    "one-segment": "abc",
    "two-segments": f"{H}.{P}",
    "four-segments": f"{H}.{P}.c2ln.extra",
    "header-not-base64": f"!!!.{P}.c2ln",
    "header-padded": f"{H}=.{P}.c2ln",
    "header-not-json": f"{b64url(b'not json')}.{P}.c2ln",
    "header-json-array": f"{b64url_json([1, 2])}.{P}.c2ln",
    "payload-not-json": f"{H}.{b64url(b'{')}.c2ln",
    "payload-json-string": f"{H}.{b64url_json('x')}.c2ln",
    "duplicate-header-member": f"{DUP_HEADER}.{P}.c2ln",
    "duplicate-payload-member": f"{H}.{DUP_PAYLOAD}.c2ln",
    "signature-not-base64": f"{H}.{P}.***",
    "kid-not-string": f"{b64url_json({'alg': 'RS256', 'kid': 5})}.{P}.c2ln",
    "header-invalid-utf8": f"{BAD_UTF8}.{P}.c2ln",
}


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_tokens(replay: ReplayServer, case: Case, name: str) -> None:
    assert _fails(case, replay, MALFORMED[name]) == "TOKEN_MALFORMED"
    assert replay.requests == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize(
    ("data", "code"),
    [(b"", "UPSTREAM_TOKEN_MISSING"), (b" \n", "UPSTREAM_TOKEN_MISSING"), ("é.a.b".encode(), "TOKEN_MALFORMED")],
)
def test_empty_and_non_ascii(replay: ReplayServer, case: Case, data: bytes, code: str) -> None:
    assert _fails(case, replay, data) == code


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_field_type(replay: ReplayServer, case: Case) -> None:
    with pytest.raises(BrokerError) as exc:
        case.verifier(replay).verify(Submission(b"", fields={"token": 5}), http_context(at(case.now)))
    assert raised_code(exc) == "TOKEN_MALFORMED"


def test_error_details_never_echo_token_bytes(replay: ReplayServer) -> None:
    secretish = "S3CRET-CLAIM-VALUE-" + "z" * 40
    token = resign(token_of(OIDC_TOKEN), fresh_key("attacker"), header={"kid": OIDC_KID}, iss=secretish)
    verifier = GCP.verifier(replay)
    with pytest.raises(BrokerError) as exc:
        verifier.verify(Submission(token.encode()), http_context(at(GCP.now)))
    assert exc.value.code.name == "UPSTREAM_TOKEN_ISSUER_UNTRUSTED"
    assert token.split(".")[2][:16] not in exc.value.detail
    assert base64.b64encode(public_pem(fresh_key("attacker")))[:16].decode() not in exc.value.detail
    assert json.dumps({"detail": exc.value.detail})  # serializable, short
    assert len(exc.value.detail) < 300


def test_mint_helper_produces_verifiable_tokens(replay: ReplayServer) -> None:
    """Guards the test helpers themselves: a test-signed token with the real payload verifies."""
    verifier, key = _signed_verifier(GCP, replay)
    _, payload = unverified(token_of(OIDC_TOKEN))
    token = mint(payload, key, {"kid": "k1"})
    assert verifier.verify(Submission(token.encode()), http_context(at(GCP.now))).attester_claims["tee"] == "sev-snp"


def test_refetch_cooldown_is_per_issuer(replay: ReplayServer) -> None:
    serve_maa(replay, WEU)
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2))
    for issuer in (EUS2, WEU):
        token = resign(token_of(MAA_EUS2), fresh_key("attacker"), header={"kid": "nope"}, iss=issuer)
        for _ in range(3):
            with pytest.raises(BrokerError) as exc:
                verifier.verify(Submission(token.encode()), http_context(at(MAA_EUS2_IAT + 5)))
            assert raised_code(exc) == "UPSTREAM_TOKEN_KEY_UNKNOWN"
    # Each issuer: one cached fetch (per request's fresh cache) + ONE forced refetch in total.
    assert replay.requests.count("/eus2/certs") == 3 + 1
    assert replay.requests.count("/weu/certs") == 3 + 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (GOOGLE_ISS + "/.well-known/openid-configuration", "http://127.0.0.1:1/gca/.well-known/openid-configuration"),
        (GOOGLE_ISS, "http://127.0.0.1:1/gca"),
        (GOOGLE_ISS + ".evil.io/.well-known/openid-configuration", None),
        ("https://www.googleapis.com/x", "http://127.0.0.1:1/gapi/x"),
    ],
)
def test_key_url_override_rewrites_whole_origins_only(url: str, expected: str | None) -> None:
    from attestation_broker.evidence.jose.keys import KeySource

    source = KeySource(
        url_override={GOOGLE_ISS: "http://127.0.0.1:1/gca", "https://www.googleapis.com": "http://127.0.0.1:1/gapi/"}
    )
    assert source.location(url) == (expected if expected is not None else url)
