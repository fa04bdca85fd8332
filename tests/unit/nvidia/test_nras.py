"""nvidia-token: the real NRAS detached EAT with the JWKS that signs it (loopback stand-in for NRAS's
/.well-known/jwks.json), NVIDIA's SDK envelope, submod digests, eat_nonce binding (test-only signer)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.nvidia_token.kind import NvidiaTokenVerifier, _detached
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.verifier import Submission, VerifyContext
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.support.replay import ReplayServer, replay_server
from tests.support.vectors import vector
from tests.unit.nvidia.support import NV, settings

TOKENS = NV + "voltagegpu/rtxpro6000_nras/nras_tokens_excerpt.json"
JWKS = NV + "voltagegpu/rtxpro6000_nras/nras_jwks_excerpt.json"
CAPTURED = datetime(2026, 9, 17, 12, 30, tzinfo=UTC)
ISSUER = "https://nras.attestation.nvidia.com"


@pytest.fixture
def nras() -> Iterator[ReplayServer]:
    with replay_server() as server:
        server.add("/.well-known/jwks.json", vector(JWKS))
        yield server


def _ctx(server: ReplayServer, now: datetime = CAPTURED) -> VerifyContext:
    return VerifyContext(
        now=now,
        collateral=CollateralCache(HttpFetcher()),
        settings=settings(offline=False, nvidia_nras_jwks_url=server.base_url + "/.well-known/jwks.json"),
    )


def _real_eat() -> bytes:
    return json.dumps(json.loads(vector(TOKENS))["nras"]).encode()


def _verify(server: ReplayServer, evidence: bytes, binding: ExpectedBinding | None = None, **kw: Any) -> Any:
    return NvidiaTokenVerifier().verify(Submission(evidence, (), {}, binding), _ctx(server, **kw))


def test_real_nras_token_verifies(nras: ReplayServer) -> None:
    appraisal = _verify(nras, _real_eat())
    assert appraisal.status.value == "affirming"
    claims = appraisal.attester_claims
    assert claims["tee"] == "nvidia-cc"
    assert claims["nvidia"]["overall_result"] is True
    assert claims["nvidia"]["devices"] == [
        {
            "name": "GPU-0",
            "hwmodel": "GB20X",
            "ueid": "638014572960251719528346605958749559314067742433",
            "driver_version": "595.71.05",
            "vbios_version": "98.02.9E.00.01",
            "measres": "success",
            "secboot": True,
            "dbgstat": "disabled",
        }
    ]
    assert appraisal.verifier_claims["collateral"][0]["type"] == "jwks"
    assert nras.requests == ["/.well-known/jwks.json"]


def test_inner_detached_eat_verifies_alone(nras: ReplayServer) -> None:
    inner = json.loads(vector(TOKENS))["nras"][1]["REMOTE_GPU_CLAIMS"]
    assert _verify(nras, json.dumps(inner).encode()).status.value == "affirming"


def test_expired_and_wrong_nonce(nras: ReplayServer) -> None:
    with pytest.raises(BrokerError) as err:
        _verify(nras, _real_eat(), now=datetime(2026, 9, 18, tzinfo=UTC))
    assert err.value.code.name == "TOKEN_EXPIRED"
    with pytest.raises(BrokerError) as err:
        _verify(nras, _real_eat(), ExpectedBinding(b"\x01" * 32))
    assert err.value.code.name == "NONCE_BINDING_MISMATCH"


def test_device_token_swapped_breaks_the_submod_digest(nras: ReplayServer) -> None:
    doc = json.loads(vector(TOKENS))["nras"][1]["REMOTE_GPU_CLAIMS"]
    doc[1]["GPU-0"] = doc[0][1]  # a validly signed token, but not the one the digest names
    with pytest.raises(BrokerError) as err:
        _verify(nras, json.dumps(doc).encode())
    assert err.value.code.name == "NRAS_SUBMOD_DIGEST_MISMATCH"


def test_sdk_hopper_eat_digest_holds_but_its_key_is_not_in_the_jwks(nras: ReplayServer) -> None:
    """The SDK's real NRAS EAT for the E2 report: its 2025-06 key is in no collected JWKS."""
    eat = vector(NV + "attestation-sdk/nras/hopperClaimsv3_detached_eat.json")
    overall, devices = _detached(eat)
    submods = jwt.decode(overall, options={"verify_signature": False})["submods"]
    assert submods["GPU-0"][1][1] == hashlib.sha256(devices["GPU-0"].encode()).hexdigest()
    decoded = json.loads(vector(NV + "attestation-sdk/nras/hopperClaimsv3_decoded.json"))
    assert jwt.decode(devices["GPU-0"], options={"verify_signature": False}) == decoded["GPU-0"]
    with pytest.raises(BrokerError) as err:
        _verify(nras, eat, now=datetime(2025, 6, 11, 0, 40, tzinfo=UTC))
    assert err.value.code.name == "UPSTREAM_TOKEN_KEY_UNKNOWN"


# --- a TEST-ONLY NRAS signer, for the positive binding case and payload mutations --------------------


KEY = ec.generate_private_key(ec.SECP384R1())
KID = "test-only-nras-kid"


def _jwks() -> bytes:
    jwk = json.loads(ECAlgorithm.to_jwk(KEY.public_key()))
    return json.dumps({"keys": [{**jwk, "kid": KID, "alg": "ES384"}]}).encode()


def _sign(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, KEY, algorithm="ES384", headers={"kid": KID})


def _eat(nonce_hex: str, *, measres: str = "success", overall: bool = True) -> bytes:
    now = int(CAPTURED.timestamp())
    base = {"iss": ISSUER, "iat": now, "nbf": now, "exp": now + 3600, "eat_nonce": nonce_hex}
    device = _sign({**base, "measres": measres, "dbgstat": "disabled", "hwmodel": "GH100 A01 GSP BROM"})
    digest = hashlib.sha256(device.encode()).hexdigest()
    top = _sign({**base, "x-nvidia-overall-att-result": overall, "submods": {"GPU-0": ["DIGEST", ["SHA-256", digest]]}})
    return json.dumps([["JWT", top], {"GPU-0": device}]).encode()


@pytest.fixture
def test_nras() -> Iterator[ReplayServer]:
    with replay_server() as server:
        server.add("/.well-known/jwks.json", _jwks())
        yield server


def test_eat_nonce_bound_to_the_broker_nonce(test_nras: ReplayServer) -> None:
    binding = ExpectedBinding(b"\x05" * 32, b"user")
    appraisal = _verify(test_nras, _eat(binding.spdm_nonce().hex()), binding)
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked"}
    with pytest.raises(BrokerError) as err:
        _verify(test_nras, _eat(ExpectedBinding(b"\x06" * 32).spdm_nonce().hex()), binding)
    assert err.value.code.name == "NONCE_BINDING_MISMATCH"


def test_measurement_failure_is_contraindicated(test_nras: ReplayServer) -> None:
    assert _verify(test_nras, _eat("00", measres="fail")).status.value == "contraindicated"
    assert _verify(test_nras, _eat("00", overall=False)).status.value == "contraindicated"


@pytest.mark.parametrize(
    ("name", "evidence", "code"),
    [
        ("not json", b"{", "NRAS_EAT_MALFORMED"),
        ("not a pair", b"[1]", "NRAS_EAT_MALFORMED"),
        ("no devices", json.dumps([["JWT", "a.b.c"], {}]).encode(), "NRAS_EAT_MALFORMED"),
        (
            "HS256",
            json.dumps([["JWT", jwt.encode({"iss": ISSUER}, "k" * 32)], {"GPU-0": "a.b.c"}]).encode(),
            "UPSTREAM_TOKEN_ALG_REJECTED",
        ),
    ],
)
def test_malformed_results(test_nras: ReplayServer, name: str, evidence: bytes, code: str) -> None:
    with pytest.raises(BrokerError) as err:
        _verify(test_nras, evidence)
    assert err.value.code.name == code, name


def test_signature_mutation_refused(test_nras: ReplayServer) -> None:
    doc = json.loads(_eat("00"))
    head, body, sig = doc[0][1].split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["x-nvidia-overall-att-result"] = False
    doc[0][1] = ".".join([head, base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode(), sig])
    with pytest.raises(BrokerError) as err:
        _verify(test_nras, json.dumps(doc).encode())
    assert err.value.code.name == "UPSTREAM_TOKEN_SIGNATURE_INVALID"
