"""gcp-token on the real Google Cloud Attestation / Confidential Space vectors (tests/vectors/gcp/).

Google's key endpoints are served by the loopback replay server through ``key_url_override``; ``now`` is pinned
to each token's ``iat`` (+5 s). Tokens signed with TEST-ONLY keys (tests/unit/tokens/helpers.py) cover what the
vectors cannot: a nonce-bound token, list-form eat_nonce, TDX hwmodel.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.gcp_token.kind import GcpTokenVerifier
from attestation_broker.evidence.gcp_token.pki import pinned_roots, verify_x5c
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import HttpFetcher
from attestation_broker.verifier import Submission

from tests.support.context import http_context
from tests.support.errors import raised_code
from tests.support.policy import decide, failed
from tests.support.replay import ReplayServer
from tests.support.vectors import vector
from tests.unit.tokens.helpers import (
    GOOGLE_DISCOVERY_PATH,
    GOOGLE_ISS,
    GOOGLE_JWKS_PATH,
    OIDC_IAT,
    OIDC_KID,
    OIDC_TOKEN,
    PKI_BAD_SIG,
    PKI_IAT,
    PKI_TOKEN,
    at,
    der_b64,
    fresh_key,
    issue,
    jwk_of,
    jwks_of,
    mint,
    pem_text,
    resign,
    self_signed,
    serve_google,
    token_of,
    unverified,
)

FLARE_DIGEST = "af738fddd31ebe48ed4d8ec936f242127850d6b01aa68a1fc9bdeb9c063feb7c"
OAK_DIGEST = "313b8a83d3c8bfc9abcffee4f538424473e2705383a7e46f16d159faf0e5ef34"


def _verify(
    verifier: GcpTokenVerifier,
    token: str | bytes,
    now: float,
    *,
    binding: ExpectedBinding | None = None,
    policy: dict[str, Any] | None = None,
    **kw: Any,
) -> Any:
    """The kind's facts, or with ``policy`` rules the appraisal the policy engine leaves (failed rules: 96)."""
    data = token.encode() if isinstance(token, str) else token
    appraisal = verifier.verify(Submission(data, binding=binding), http_context(at(now), **kw))
    return appraisal if policy is None else decide(appraisal, policy, now=at(now)).appraisal


# --- real vectors ---------------------------------------------------------------------------------------


def test_oidc_vector_verifies_with_discovered_jwks(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    appraisal = _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5)
    claims = appraisal.attester_claims
    assert claims["tee"] == "sev-snp" and claims["platform"] == "gcp"
    assert claims["measurement"] == FLARE_DIGEST
    assert claims["dbgstat"] == "enabled"
    assert claims["tcb"] == {"status": "Unknown"}
    assert claims["instance"] == {
        "id": "2309024543710493487",
        "name": "test-confidential",
        "project": "flare-network-sandbox",
        "zone": "us-central1-b",
        "project_number": "83674517876",
    }
    gcp = claims["gcp"]
    assert gcp["hwmodel"] == "GCP_AMD_SEV" and gcp["swname"] == "CONFIDENTIAL_SPACE"
    assert gcp["swversion"] == ["240900"] and gcp["secboot"] is True and gcp["oemid"] == 11129
    assert gcp["eat_nonce"] == ["0x000000000000000000000000000000000000dEaD"]
    assert gcp["google_service_accounts"] == ["83674517876-compute@developer.gserviceaccount.com"]
    assert gcp["container"]["image_reference"] == "ghcr.io/dineshpinto/test-confidential:main"
    assert "env" not in gcp["container"] and "PYTHON_VERSION" in gcp["container"]["env_names"]
    assert gcp["confidential_space"] == {"monitoring_enabled": {"memory": False}}
    vc = appraisal.verifier_claims
    assert vc["evidence_kind"] == "gcp-token"
    assert vc["bindings"] == {"nonce": "not-requested"}
    up = vc["upstream"]
    assert up["iss"] == GOOGLE_ISS and up["kid"] == OIDC_KID and up["alg"] == "RS256"
    assert up["key_source"] == "jwks" and up["token_form"] == "oidc"
    assert up["token_sha256"] == hashlib.sha256(token_of(OIDC_TOKEN).encode()).hexdigest()
    assert up["aud"] == ["https://sts.google.com"] and up["audience_checked"] is False
    assert [c["type"] for c in vc["collateral"]] == ["oidc_discovery", "jwks"]
    assert vc["collateral"][1]["url"].startswith("https://www.googleapis.com/")
    assert all(c["source"] == "origin" and c["stale"] is False for c in vc["collateral"])
    assert replay.requests == [GOOGLE_DISCOVERY_PATH, GOOGLE_JWKS_PATH]
    # Facts: debug → visible memory (96); audience not pinned → no instance-identity claim (0).
    assert appraisal.trustworthiness_vector == {
        "instance-identity": ar4si.NO_CLAIM,
        "hardware": ar4si.HW_GENUINE,
        "runtime-opaque": ar4si.RUNTIME_CONTRAINDICATED,
        "executables": ar4si.EXEC_UNRECOGNIZED,
        "configuration": ar4si.CONFIG_APPROVED,
    }
    assert appraisal.status is EarStatus.CONTRAINDICATED
    assert appraisal.policy_ids == ()
    assert failed(decide(appraisal, None)) == ["debug", "trustworthiness"]


def test_oidc_keys_are_cached_between_requests(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    cache = CollateralCache(HttpFetcher())
    _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5, cache=cache)
    second = _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 60, cache=cache)
    assert len(replay.requests) == 2
    assert [c["source"] for c in second.verifier_claims["collateral"]] == ["memory", "memory"]


def test_pki_vector_verifies_offline_to_pinned_root(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    appraisal = _verify(verifier, vector(PKI_TOKEN), PKI_IAT + 5)
    assert replay.requests == []  # PKI tokens need no fetch
    claims = appraisal.attester_claims
    assert claims["measurement"] == OAK_DIGEST and claims["tee"] == "sev-snp"
    assert claims["instance"]["project"] == "oak-ci" and claims["instance"]["id"] == "6256007950053693934"
    up = appraisal.verifier_claims["upstream"]
    assert up["key_source"] == "x5c" and up["token_form"] == "pki" and up["ignored_headers"] == []
    assert up["aud"] == ["https://echo.oak.dev"]
    (record,) = appraisal.verifier_claims["collateral"]
    assert record["type"] == "x5c" and record["source"] == "evidence"
    assert record["subject"] == "Confidential Space Leaf Certificate"
    assert record["next_update"] == "2025-08-18T04:35:44+00:00"


def test_pki_invalid_signature_vector_fails_with_signature_code(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(PKI_BAD_SIG), PKI_IAT + 5)
    assert raised_code(exc) == "UPSTREAM_TOKEN_SIGNATURE_INVALID"
    assert exc.value.status == 403


def test_pki_leaf_expired_is_cert_expired() -> None:
    with pytest.raises(BrokerError) as exc:
        _verify(GcpTokenVerifier(), vector(PKI_TOKEN), 1755600000)  # 2025-08-19, after the leaf's notAfter
    assert raised_code(exc) == "CERT_EXPIRED"


@pytest.mark.parametrize("as_pem", [False, True], ids=["base64-der", "pem-text"])
def test_real_x5c_chain_accepted_as_der_and_pem(as_pem: bool) -> None:
    from cryptography import x509

    header, _ = unverified(token_of(PKI_TOKEN))
    entries = header["x5c"]
    if as_pem:
        entries = [pem_text(x509.load_der_x509_certificate(__import__("base64").b64decode(e))) for e in entries]
    key, record = verify_x5c(entries, at(PKI_IAT), 60)
    assert key.key_size >= 2048 and record["issuer"] == "Confidential Space Intermediate CA"


@pytest.mark.parametrize(
    ("select", "code"),
    [
        (lambda e: e[:2], None),  # the root may be left out: the intermediate chains to the pinned root
        (lambda e: e[:1], "CERT_CHAIN_INVALID"),  # leaf alone does not chain to the root
        (lambda e: e[1:], "CERT_CHAIN_INVALID"),  # a CA certificate as the signer
        (lambda e: [e[1], e[0], e[2]], "CERT_CHAIN_INVALID"),  # wrong order
        (lambda e: [], "CERT_CHAIN_INVALID"),
        (lambda e: [e[0], "bm90IGEgY2VydA==", e[2]], "CERT_CHAIN_INVALID"),
        (lambda e: "MIIB", "CERT_CHAIN_INVALID"),
    ],
    ids=["leaf+intermediate", "leaf-only", "no-leaf", "reordered", "empty", "garbage-entry", "not-a-list"],
)
def test_x5c_chain_shapes(select: Any, code: str | None) -> None:
    header, _ = unverified(token_of(PKI_TOKEN))
    if code is None:
        verify_x5c(select(header["x5c"]), at(PKI_IAT), 60)
        return
    with pytest.raises(BrokerError) as exc:
        verify_x5c(select(header["x5c"]), at(PKI_IAT), 60)
    assert raised_code(exc) == code


def test_pinned_root_is_the_real_confidential_space_root() -> None:
    from cryptography.hazmat.primitives import hashes

    (root,) = pinned_roots()
    assert root.fingerprint(hashes.SHA256()).hex() == (
        "148b293821bb0c6a317f413c8ba475814091cb22d49b9e3c94198db8e8f86c39"
    )


@pytest.mark.parametrize("as_pem", [False, True], ids=["base64-der", "pem-text"])
def test_pki_token_with_test_chain_both_encodings(as_pem: bool) -> None:
    """A TEST-ONLY chain (root → intermediate → leaf): both x5c encodings verify against that root."""
    root_key, int_key, leaf_key = fresh_key("cs-root"), fresh_key("cs-int"), fresh_key("cs-leaf")
    root = self_signed(root_key, "Test CS Root")
    inter = issue(root_key, root, int_key, "Test CS Intermediate", ca=True)
    leaf = issue(int_key, inter, leaf_key, "Test CS Leaf", ca=False)
    encode = pem_text if as_pem else der_b64
    key, _ = verify_x5c([encode(leaf), encode(inter), encode(root)], at(PKI_IAT), 60, roots=(root,))
    assert key.public_numbers() == leaf_key.public_key().public_numbers()
    with pytest.raises(BrokerError) as exc:  # the same chain is refused against the pinned Google root
        verify_x5c([encode(leaf), encode(inter), encode(root)], at(PKI_IAT), 60)
    assert raised_code(exc) == "CERT_CHAIN_INVALID"


# --- issuer, key discovery, refetch ----------------------------------------------------------------------


def test_unpinned_issuer_is_rejected_before_any_fetch(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5, settings=Settings(gcp_token_issuers=("https://other",)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_ISSUER_UNTRUSTED"
    assert replay.requests == []


def test_discovery_naming_another_issuer_is_refused(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay, issuer="https://evil.example"))
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5)
    assert raised_code(exc) == "GCP_TOKEN_DISCOVERY_INVALID"


@pytest.mark.parametrize(("status", "code"), [(404, "COLLATERAL_NOT_FOUND"), (503, "COLLATERAL_UNAVAILABLE")])
def test_key_endpoint_failures(replay: ReplayServer, status: int, code: str) -> None:
    override = serve_google(replay)
    replay.add(GOOGLE_JWKS_PATH, b"down", status)
    with pytest.raises(BrokerError) as exc:
        _verify(GcpTokenVerifier(key_url_override=override), vector(OIDC_TOKEN), OIDC_IAT + 5)
    assert raised_code(exc) == code


def test_unknown_kid_refetches_once_then_cools_down(replay: ReplayServer) -> None:
    stale = jwks_of(jwk_of(fresh_key("other"), "old-kid"))
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay, stale), refetch_cooldown_seconds=300)
    cache = CollateralCache(HttpFetcher())
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5, cache=cache)
    assert raised_code(exc) == "UPSTREAM_TOKEN_KEY_UNKNOWN"
    assert replay.requests.count(GOOGLE_JWKS_PATH) == 2  # cached fetch + one forced refetch
    for _ in range(5):  # a storm of unknown kids inside the cooldown fetches nothing more
        with pytest.raises(BrokerError):
            _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 10, cache=cache)
    assert replay.requests.count(GOOGLE_JWKS_PATH) == 2
    # Key rotation: the issuer now publishes the kid; after the cooldown one refetch finds it.
    replay.add(GOOGLE_JWKS_PATH, vector("gcp/cs-oidc-jwks-kid-4676c490.json"))
    appraisal = _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5 + 301, cache=cache)
    assert appraisal.verifier_claims["upstream"]["keys_refetched"] is True
    assert replay.requests.count(GOOGLE_JWKS_PATH) == 3


# --- audience, time, nonce ---------------------------------------------------------------------------------


def test_configured_audience_matches_and_trusts_instance(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    settings = Settings(upstream_audiences=("https://sts.google.com",))
    appraisal = _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5, settings=settings)
    assert appraisal.trustworthiness_vector["instance-identity"] == ar4si.IDENTITY_TRUSTED
    assert appraisal.verifier_claims["upstream"]["audience_checked"] is True


@pytest.mark.parametrize("token", [OIDC_TOKEN, PKI_TOKEN])
def test_wrong_audience(replay: ReplayServer, token: str) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    now = OIDC_IAT if token == OIDC_TOKEN else PKI_IAT
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(token), now + 5, settings=Settings(upstream_audiences=("attestation-broker",)))
    assert raised_code(exc) == "UPSTREAM_TOKEN_AUDIENCE_MISMATCH"


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (-61, "UPSTREAM_TOKEN_NOT_YET_VALID"),  # before iat/nbf beyond the 60 s skew
        (-59, None),
        (3600 + 59, None),  # exp is iat + 1 h
        (3600 + 60, "TOKEN_EXPIRED"),
    ],
)
def test_validity_window_with_skew(replay: ReplayServer, offset: int, code: str | None) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    if code is None:
        _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + offset)
        return
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + offset)
    assert raised_code(exc) == code


def test_real_token_does_not_bind_a_broker_nonce(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5, binding=ExpectedBinding(bytes.fromhex("dead")))
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


def _test_signed(replay: ReplayServer, **claims: Any) -> tuple[GcpTokenVerifier, str]:
    """The flare payload re-signed by a TEST-ONLY key that the replayed JWKS publishes."""
    key = fresh_key("google-test-signer")
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay, jwks_of(jwk_of(key, "test-kid"))))
    return verifier, resign(token_of(OIDC_TOKEN), key, header={"kid": "test-kid"}, **claims)


@pytest.mark.parametrize("form", ["string", "list"])
def test_nonce_binding_checked(replay: ReplayServer, form: str) -> None:
    nonce = bytes(range(16))
    value: Any = nonce.hex() if form == "string" else ["another-nonce-value", nonce.hex()]
    verifier, token = _test_signed(replay, eat_nonce=value)
    appraisal = _verify(verifier, token, OIDC_IAT + 5, binding=ExpectedBinding(nonce))
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked"}
    for bad in (ExpectedBinding(b"\x01" * 16), ExpectedBinding(nonce, b"user-data")):
        with pytest.raises(BrokerError) as exc:
            _verify(verifier, token, OIDC_IAT + 5, binding=bad)
        assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


def test_tdx_hwmodel_and_unknown_hwmodel(replay: ReplayServer) -> None:
    verifier, token = _test_signed(replay, hwmodel="GCP_INTEL_TDX", dbgstat="disabled-since-boot")
    appraisal = _verify(verifier, token, OIDC_IAT + 5)
    assert appraisal.attester_claims["tee"] == "tdx" and appraisal.attester_claims["dbgstat"] == "disabled"
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_ENCRYPTED
    verifier, token = _test_signed(replay, hwmodel="GCP_QUANTUM")
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, token, OIDC_IAT + 5)
    assert raised_code(exc) == "GCP_TOKEN_HWMODEL_UNKNOWN"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": None}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"iat": "yesterday"}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"dbgstat": None}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"dbgstat": "maybe"}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"secboot": "true"}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"aud": 5}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"submods": {"container": {"image_digest": "md5:abc"}}}, "UPSTREAM_TOKEN_CLAIMS_INVALID"),
        ({"iss": "https://evil.example"}, "UPSTREAM_TOKEN_ISSUER_UNTRUSTED"),
    ],
    ids=["no-exp", "bad-iat", "no-dbgstat", "bad-dbgstat", "bad-secboot", "bad-aud", "bad-digest", "iss"],
)
def test_signed_but_invalid_claims(replay: ReplayServer, claims: dict[str, Any], code: str) -> None:
    verifier, token = _test_signed(replay)
    _, payload = unverified(token)
    for name, value in claims.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    token = mint(payload, fresh_key("google-test-signer"), {"kid": "test-kid"})
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, token, OIDC_IAT + 5)
    assert raised_code(exc) == code


# --- policy ---------------------------------------------------------------------------------------------------


def test_policy_allow_debug_and_image_allow_list(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    settings = Settings(upstream_audiences=("https://sts.google.com",))
    policy = {"debug": "allowed", "reference_values": [{"label": "flare", "claims": {"measurement": FLARE_DIGEST}}]}
    appraisal = _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5, settings=settings, policy=policy)
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_VISIBLE
    assert appraisal.status is EarStatus.WARNING and appraisal.policy_ids[0].startswith("gcp-token-test@sha256:")
    other = {
        "debug": "allowed",
        "reference_values": [{"label": "oak", "claims": {"measurement": OAK_DIGEST}}],
        "claims": {"gcp.hwmodel": ["GCP_INTEL_TDX"]},
    }
    facts = _verify(verifier, vector(OIDC_TOKEN), OIDC_IAT + 5)
    decision = decide(facts, other)
    assert failed(decision) == ["reference_values", "claims.gcp.hwmodel"]
    assert decision.appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED


def test_secure_boot_off(replay: ReplayServer) -> None:
    verifier, token = _test_signed(replay, secboot=False)
    facts = _verify(verifier, token, OIDC_IAT + 5)
    assert facts.trustworthiness_vector["configuration"] == ar4si.CONFIG_UNSAFE  # known vulnerability: a warning
    # (the re-signed token is a debug image too) the built-in default also requires secure boot:
    assert failed(decide(facts, None)) == ["debug", "conditions.secure-boot", "trustworthiness"]
    assert failed(decide(facts, {"debug": "allowed"})) == []  # an operator policy may accept both


def test_token_in_envelope_field(replay: ReplayServer) -> None:
    verifier = GcpTokenVerifier(key_url_override=serve_google(replay))
    appraisal = verifier.verify(Submission(b"", fields={"token": token_of(OIDC_TOKEN)}), http_context(at(OIDC_IAT + 5)))
    assert appraisal.attester_claims["measurement"] == FLARE_DIGEST
    assert json.dumps(appraisal.attester_claims)  # JSON-serializable
