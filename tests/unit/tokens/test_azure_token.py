"""azure-token on the real MAA vectors (tests/vectors/azure/maa-*.jwt + maa-signing-keys-by-jku.json).

Each shared instance's ``/certs`` is served by the loopback replay server (``key_url_override``) with that
instance's keys from the key file; ``now`` is pinned to each token's ``iat`` (+5 s). The key file has bare
RSA keys (no x5c), so MAA's x5c-carrying ``/certs`` shape, TDX and nonce-bound tokens use TEST-ONLY keys.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.azure_token.abi import parse_claims
from attestation_broker.evidence.azure_token.claims import attester_claims
from attestation_broker.evidence.azure_token.kind import AzureTokenVerifier
from attestation_broker.verifier import Submission

from tests.support.context import http_context
from tests.support.errors import raised_code
from tests.support.policy import decide, failed
from tests.support.replay import ReplayServer
from tests.support.vectors import vector
from tests.unit.tokens.helpers import (
    EUS2,
    MAA_EUS2,
    MAA_EUS2_IAT,
    MAA_TVM,
    MAA_TVM_IAT,
    MAA_WEU,
    MAA_WEU_IAT,
    WEU,
    at,
    der_b64,
    fresh_key,
    jwk_of,
    jwks_of,
    maa_keys,
    resign,
    self_signed,
    serve_maa,
    token_of,
    unverified,
)

WEU_MEASUREMENT = "8962535933f5c4b429ec41d6550c187c163aa76f3be1f8d750a272a9d8995023e8286a2e431a96c36087ac46d4188676"
EUS2_MEASUREMENT = "036fc22b517981a791f7f8b89d634a00e964f6b0dfabc568090eb4393d6026f96aa6b7cca2759f29e521469f1189c00c"


def _verify(
    verifier: AzureTokenVerifier,
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


def test_weu_snp_cvm_vector(replay: ReplayServer) -> None:
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, WEU))
    appraisal = _verify(verifier, vector(MAA_WEU), MAA_WEU_IAT + 5)
    claims = appraisal.attester_claims
    assert claims["tee"] == "sev-snp" and claims["platform"] == "azure"
    assert claims["measurement"] == WEU_MEASUREMENT
    assert claims["dbgstat"] == "disabled"
    assert claims["report_data"].startswith("9b6d02e76832f3bb") and len(claims["report_data"]) == 128
    assert claims["tcb"] == {
        "status": "UpToDate",
        "compliance_status": "azure-compliant-cvm",
        "bootloader_svn": 3,
        "tee_svn": 0,
        "snpfw_svn": 8,
        "microcode_svn": 115,
        "guestsvn": 4,
    }
    assert claims["instance"] == {"vm_id": "70F5CE9A-2BDC-4B6B-8401-E9B964D3AEB7"}
    azure = claims["azure"]
    assert azure["attestation_type"] == "azurevm" and azure["tee_attestation_type"] == "sevsnpvm"
    assert azure["policy_hash"] == "wm9mHlvTU82e8UqoOy1Yj1FBRSNkfe99-69IYDq9eWs"
    assert azure["sevsnpvm"]["vmpl"] == 0 and azure["sevsnpvm"]["is_debuggable"] is False
    assert azure["sevsnpvm"]["family_id"] == "01000000000000000000000000000000"
    assert azure["azurevm"]["osbuild"] == "NotApplicable" and azure["azurevm"]["ostype"] == "Windows"
    assert azure["azurevm"]["attested_pcrs"] == [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13]
    assert azure["vm_configuration"]["vm_unique_id"] == "70F5CE9A-2BDC-4B6B-8401-E9B964D3AEB7"
    assert azure["client_payload"] == {"nonce": "QURFMDEwMQ=="}
    assert azure["tee_runtime_key_ids"] == ["HCLAkPub"]
    assert appraisal.cnf is not None and appraisal.cnf["jwk"]["kid"] == "TpmEphemeralEncryptionKey"
    assert appraisal.cnf["jwk"]["kty"] == "RSA" and "d" not in appraisal.cnf["jwk"]
    up = appraisal.verifier_claims["upstream"]
    assert up["iss"] == WEU and up["kid"] == "dRKh+hBcWUfQimSl3Iv6ZhStW3TSOt0ThwiTgUUqZAo="
    assert up["jti"] == "3bf48db13e9cbcbfd289370d9146aae318588399cdcda1495ad7e77006a53d71"
    assert up["key_source"] == "maa-certs" and up["key_url"] == WEU + "/certs"
    assert up["ignored_headers"] == ["jku"] and up["header_jku_matches_issuer"] is True
    assert up["token_sha256"] == hashlib.sha256(token_of(MAA_WEU).encode()).hexdigest()
    assert up["aud"] == []
    (record,) = appraisal.verifier_claims["collateral"]
    assert record["type"] == "jwks" and record["url"] == WEU + "/certs" and record["source"] == "origin"
    assert replay.requests == ["/weu/certs"]
    assert appraisal.trustworthiness_vector == {
        "instance-identity": ar4si.NO_CLAIM,  # neither nonce nor audience binds it to this request
        "hardware": ar4si.HW_GENUINE,
        "runtime-opaque": ar4si.RUNTIME_ENCRYPTED,
        "executables": ar4si.EXEC_UNRECOGNIZED,
        "configuration": ar4si.CONFIG_APPROVED,
    }
    assert appraisal.status is EarStatus.WARNING and appraisal.policy_ids == ()
    assert failed(decide(appraisal, None)) == []


def test_eus2_snp_cvm_vector(replay: ReplayServer) -> None:
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2))
    policy = {"reference_values": [{"label": "eus2", "claims": {"measurement": EUS2_MEASUREMENT}}]}
    appraisal = _verify(verifier, vector(MAA_EUS2), MAA_EUS2_IAT + 5, policy=policy)
    claims = appraisal.attester_claims
    assert claims["measurement"] == EUS2_MEASUREMENT and claims["tcb"]["snpfw_svn"] == 21
    assert claims["azure"]["azurevm"]["osbuild"] == "NotApplication"  # sic, genuine MAA output
    assert claims["azure"]["azurevm"]["osdistro"] == "Ubuntu"
    assert claims["azure"]["tee_runtime_key_ids"] == ["HCLAkPub", "HCLEkPub"]
    assert claims["azure"]["user_data"] == "0" * 128
    assert claims["instance"]["vm_id"] == "9A42ABD5-8385-42B3-9255-FE7807698194"
    assert appraisal.trustworthiness_vector["executables"] == ar4si.EXEC_APPROVED_BOOT
    other = _verify(
        verifier,
        vector(MAA_EUS2),
        MAA_EUS2_IAT + 5,
        policy={"reference_values": [{"label": "weu", "claims": {"measurement": WEU_MEASUREMENT}}]},
    )
    assert other.trustworthiness_vector["executables"] == ar4si.EXEC_CONTRAINDICATED


def test_tvm_vector_kid_not_published_is_key_unknown(replay: ReplayServer) -> None:
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2))
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(MAA_TVM), MAA_TVM_IAT + 5)
    assert raised_code(exc) == "UPSTREAM_TOKEN_KEY_UNKNOWN"
    assert replay.requests == ["/eus2/certs", "/eus2/certs"]  # cached fetch + one forced refetch


def test_tvm_vector_claims_normalize_as_vtpm() -> None:
    """Parse-only (signature key not available): the Trusted Launch claim set normalizes."""
    _, payload = unverified(token_of(MAA_TVM))
    claims = attester_claims(parse_claims(payload))
    assert claims["tee"] == "vtpm" and claims["dbgstat"] == "disabled" and "measurement" not in claims
    assert claims["tcb"] == {"status": "Unknown"}
    assert claims["instance"] == {"vm_id": "F7CEA813-4C44-436C-8537-5701999C4589"}
    assert claims["azure"]["azurevm"]["attestation_protocol_ver"] == "1.0"


def _test_keys(replay: ReplayServer, label: str, kid: str, issuer: str = EUS2, **jwk_extra: Any) -> AzureTokenVerifier:
    key = fresh_key(label)
    return AzureTokenVerifier(key_url_override=serve_maa(replay, issuer, jwks_of(jwk_of(key, kid, **jwk_extra))))


def test_tvm_payload_full_path_with_test_key(replay: ReplayServer) -> None:
    verifier = _test_keys(replay, "maa-test", "test-kid")
    token = resign(token_of(MAA_TVM), fresh_key("maa-test"), header={"kid": "test-kid", "jku": EUS2 + "/certs"})
    appraisal = _verify(verifier, token, MAA_TVM_IAT + 5)
    assert appraisal.attester_claims["tee"] == "vtpm"
    # Hypervisor isolation without memory encryption: registered "isolated memory" (32), a warning.
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_ISOLATED
    assert failed(decide(appraisal, None)) == ["conditions.confidential-vm"]  # the default names CVMs only
    relaxed = decide(appraisal, {"debug": "forbidden"})  # a policy that names no TEE requirement
    assert failed(relaxed) == [] and relaxed.status is EarStatus.WARNING


def test_maa_certs_with_x5c_keys(replay: ReplayServer) -> None:
    """MAA's /certs shape: keys carry only x5c (self-signed signing certificate)."""
    key = fresh_key("maa-x5c")
    cert = self_signed(key, "maa test signing", start=datetime(2024, 1, 1, tzinfo=UTC), days=365)
    body = jwks_of({"kty": "RSA", "kid": "x5c-kid", "x5c": [der_b64(cert)]})
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, EUS2, body))
    token = resign(token_of(MAA_EUS2), key, header={"kid": "x5c-kid", "jku": EUS2 + "/certs"})
    assert _verify(verifier, token, MAA_EUS2_IAT + 5).attester_claims["tee"] == "sev-snp"
    late = resign(token_of(MAA_EUS2), key, header={"kid": "x5c-kid"}, iat=1748736000, nbf=1748736000, exp=1748764800)
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, late, 1748736005)  # 2025-06-01: token fresh, signing certificate expired
    assert raised_code(exc) == "CERT_EXPIRED"


def test_nonce_binding_via_client_payload(replay: ReplayServer) -> None:
    nonce = bytes.fromhex("00112233445566778899aabbccddeeff")
    verifier = _test_keys(replay, "maa-test", "test-kid")
    _, payload = unverified(token_of(MAA_EUS2))
    runtime = dict(payload["x-ms-runtime"], **{"client-payload": {"nonce": nonce.hex()}})
    token = resign(token_of(MAA_EUS2), fresh_key("maa-test"), header={"kid": "test-kid"}, **{"x-ms-runtime": runtime})
    appraisal = _verify(verifier, token, MAA_EUS2_IAT + 5, binding=ExpectedBinding(nonce))
    assert appraisal.verifier_claims["bindings"] == {"nonce": "checked"}
    assert appraisal.trustworthiness_vector["instance-identity"] == ar4si.IDENTITY_TRUSTED
    assert appraisal.status is EarStatus.WARNING  # executables unrecognized under the default policy
    for bad in (ExpectedBinding(nonce[::-1]), ExpectedBinding(nonce, b"ud")):
        with pytest.raises(BrokerError) as exc:
            _verify(verifier, token, MAA_EUS2_IAT + 5, binding=bad)
        assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


def test_real_vector_with_requested_binding_is_mismatch(replay: ReplayServer) -> None:
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, WEU))
    with pytest.raises(BrokerError) as exc:
        _verify(verifier, vector(MAA_WEU), MAA_WEU_IAT + 5, binding=ExpectedBinding(b"ADE0101"))
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


def test_tdx_claim_set_with_test_key(replay: ReplayServer) -> None:
    verifier = _test_keys(replay, "maa-test", "test-kid")
    mrtd = "ab" * 48
    tee = {
        "x-ms-attestation-type": "tdxvm",
        "x-ms-compliance-status": "azure-compliant-cvm",
        "tdx_mrtd": mrtd.upper(),
        "tdx_report_data": "cd" * 64,
        "tdx_td_attributes_debug": True,
        "tdx_rtmr0": "00" * 48,
        "x-ms-runtime": {"keys": [], "vm-configuration": {"secure-boot": True, "vmUniqueId": "VM-1"}},
    }
    token = resign(token_of(MAA_EUS2), fresh_key("maa-test"), header={"kid": "test-kid"}, **{"x-ms-isolation-tee": tee})
    appraisal = _verify(verifier, token, MAA_EUS2_IAT + 5, policy={"debug": "allowed"})
    claims = appraisal.attester_claims
    assert claims["tee"] == "tdx" and claims["measurement"] == mrtd and claims["dbgstat"] == "enabled"
    assert claims["report_data"] == "cd" * 64 and claims["azure"]["tdx"]["rtmr0"] == "00" * 48
    assert appraisal.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_VISIBLE
    assert appraisal.waived == ("runtime-opaque",) and appraisal.status is EarStatus.WARNING
    strict = _verify(verifier, token, MAA_EUS2_IAT + 5)
    assert strict.trustworthiness_vector["runtime-opaque"] == ar4si.RUNTIME_CONTRAINDICATED


@pytest.mark.parametrize(
    ("tee_type", "compliance", "code", "hardware"),
    [
        ("sgx", "azure-compliant-cvm", "AZURE_TOKEN_TEE_UNKNOWN", None),
        ("sevsnpvm", "not-compliant", None, ar4si.HW_UNRECOGNIZED),
    ],
)
def test_isolation_type_and_compliance(
    replay: ReplayServer, tee_type: str, compliance: str, code: str | None, hardware: int | None
) -> None:
    verifier = _test_keys(replay, "maa-test", "test-kid")
    _, payload = unverified(token_of(MAA_EUS2))
    tee = dict(
        payload["x-ms-isolation-tee"], **{"x-ms-attestation-type": tee_type, "x-ms-compliance-status": compliance}
    )
    token = resign(token_of(MAA_EUS2), fresh_key("maa-test"), header={"kid": "test-kid"}, **{"x-ms-isolation-tee": tee})
    if code is not None:
        with pytest.raises(BrokerError) as exc:
            _verify(verifier, token, MAA_EUS2_IAT + 5)
        assert raised_code(exc) == code
        return
    appraisal = _verify(verifier, token, MAA_EUS2_IAT + 5)
    assert appraisal.trustworthiness_vector["hardware"] == hardware
    assert appraisal.attester_claims["tcb"]["status"] == "Unknown"


def test_issuer_pin_tolerates_trailing_slash(replay: ReplayServer) -> None:
    verifier = AzureTokenVerifier(key_url_override=serve_maa(replay, WEU))
    settings = Settings(maa_issuers=(WEU + "/",))
    assert _verify(verifier, vector(MAA_WEU), MAA_WEU_IAT + 5, settings=settings).attester_claims["tee"] == "sev-snp"
    assert replay.requests == ["/weu/certs"]


def test_key_file_vectors_keys_parse() -> None:
    from attestation_broker.evidence.jose.keys import parse_jwks

    for jku in (WEU, EUS2):
        keys = parse_jwks(maa_keys(jku))
        assert keys and all(k.key.key_size >= 2048 for k in keys.values())
