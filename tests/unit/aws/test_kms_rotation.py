"""Rotating the KMS signing keys (docs/deploy.md "Rotating the KMS signing keys") against moto KMS over HTTP,
with the broker clock injected: a broker deployed with new ES256/RS256 KMS keys and the old ones listed in
``retired_signers`` / ``retired_signers_rs256`` publishes the old public keys until their ``published_until``
and accepts tokens the old key signed inside the window, and neither after it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from attestation_broker.api.http import HttpRequest
from attestation_broker.bootstrap import build_keyring
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError

from tests.support.broker import FIXED_NOW, Harness, make_harness
from tests.support.federation import AZURE_AUDIENCE, attest, exchange

OVERLAP_END = FIXED_NOW + timedelta(hours=1)
SECRET = "00" * 32


def _key(kms: Any, spec: str) -> str:
    return str(kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"])


@pytest.fixture
def keys(kms: Any, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return {
        "old_es": _key(kms, "ECC_NIST_P256"),
        "new_es": _key(kms, "ECC_NIST_P256"),
        "old_rs": _key(kms, "RSA_2048"),
        "new_rs": _key(kms, "RSA_2048"),
    }


def _broker(tmp_path: Path, es: str, rs: str, **settings: Any) -> Harness:
    return make_harness(
        tmp_path,
        signer=f"kms:{es}",
        signer_rs256=f"kms:{rs}",
        nonce_secret=SECRET,
        token_ttl_seconds=4 * 3600,  # outlives the overlap, so only the key window decides
        federation_audiences=(AZURE_AUDIENCE,),
        **settings,
    )


def _verify(h: Harness, token: str) -> dict[str, Any]:
    body = json.dumps({"token": token}).encode()
    doc: dict[str, Any] = h.api.handle(
        HttpRequest("POST", "/v1/verify", {"content-type": "application/json"}, body)
    ).json()
    return doc


def _kids(h: Harness) -> set[tuple[str, str]]:
    return {(k["kid"], k["alg"]) for k in h.broker.jwks()["keys"]}


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_retired_kms_keys_are_published_and_accepted_until_their_overlap_ends(
    tmp_path: Path, keys: dict[str, str]
) -> None:
    before = _broker(tmp_path / "before", keys["old_es"], keys["old_rs"])
    ear = attest(before)["token"]
    federated = exchange(before, ear, AZURE_AUDIENCE).json()["access_token"]
    old = {(_kid(ear), "ES256"), (_kid(federated), "RS256")}
    assert _kids(before) == old and jwt.get_unverified_header(federated)["alg"] == "RS256"

    until = OVERLAP_END.isoformat().replace("+00:00", "Z")
    after = _broker(
        tmp_path / "after",
        keys["new_es"],
        keys["new_rs"],
        retired_signers=(f"kms:{keys['old_es']}@{until}",),
        retired_signers_rs256=(f"kms:{keys['old_rs']}@{until}",),
    )
    after.clock[0] = FIXED_NOW + timedelta(minutes=30)
    new_ear = attest(after)["token"]
    new_federated = exchange(after, new_ear, AZURE_AUDIENCE).json()["access_token"]
    new = {(_kid(new_ear), "ES256"), (_kid(new_federated), "RS256")}
    assert new.isdisjoint(old)
    # Inside the window: the active keys first, then both retired ones; both generations verify.
    published = after.broker.jwks()["keys"]
    assert {(k["kid"], k["alg"]) for k in published[:2]} == new and _kids(after) == new | old
    assert _verify(after, ear)["valid"] is True and _verify(after, new_ear)["valid"] is True
    jwks = jwt.PyJWKSet.from_dict(after.broker.jwks())
    claims = jwt.decode(
        federated,
        jwks[_kid(federated)].key,
        algorithms=["RS256"],
        audience=AZURE_AUDIENCE,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["aud"] == AZURE_AUDIENCE

    # At published_until the retired keys disappear and tokens they signed are refused, unexpired as they are.
    after.clock[0] = OVERLAP_END
    assert _kids(after) == new
    refused = _verify(after, ear)
    assert "valid" not in refused and (refused["status"], refused["code"]) == (403, "TOKEN_INVALID"), refused
    assert refused["detail"].endswith("is not among the published keys")
    assert _verify(after, new_ear)["valid"] is True


def test_an_expired_entry_is_never_fetched_from_kms(tmp_path: Path, keys: dict[str, str]) -> None:
    # An ARN of a key that does not exist: any GetPublicKey would be SIGNER_UNAVAILABLE.
    gone = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    h = _broker(
        tmp_path,
        keys["new_es"],
        keys["new_rs"],
        retired_signers=(f"kms:{gone}@2026-11-01T00:00:00Z",),
        retired_signers_rs256=(f"kms:{gone}@2026-11-23T12:00:00+00:00",),  # == FIXED_NOW: window closed
    )
    assert {alg for _kid, alg in _kids(h)} == {"ES256", "RS256"} and len(_kids(h)) == 2


def test_a_retired_key_of_the_wrong_type_stops_publication(tmp_path: Path, keys: dict[str, str]) -> None:
    ring = build_keyring(
        Settings(
            signer=f"kms:{keys['new_es']}", signer_rs256="off", retired_signers=(f"kms:{keys['old_rs']}@2099-01-01",)
        )
    )
    with pytest.raises(BrokerError) as info:
        ring.jwks(FIXED_NOW)
    assert info.value.code.name == "CONFIG_INVALID"


@pytest.mark.parametrize(
    "entry",
    ["kms:alias/old", "alias/old@2027-01-01T00:00:00Z", "kms:@2027-01-01T00:00:00Z", "kms:alias/old@next week"],
)
def test_malformed_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(BrokerError) as info:
        build_keyring(Settings(signer="kms:alias/new", signer_rs256="off", retired_signers_rs256=(entry,)))
    assert info.value.code.name == "CONFIG_INVALID" and "BROKER_RETIRED_SIGNERS_RS256" in str(info.value.detail)


def test_the_settings_read_from_the_environment() -> None:
    env = {"BROKER_RETIRED_SIGNERS": "kms:alias/a@2027-01-01T00:00:00Z, kms:arn:aws:kms:eu-west-1:1:key/b@2027-02-01"}
    settings = Settings.from_env(env)
    assert settings.retired_signers == (
        "kms:alias/a@2027-01-01T00:00:00Z",
        "kms:arn:aws:kms:eu-west-1:1:key/b@2027-02-01",
    )


def test_verifying_an_es256_token_never_reads_the_rs256_key(tmp_path: Path, keys: dict[str, str]) -> None:
    # The RS256 key is a KMS key that does not exist: reading its public half would be SIGNER_UNAVAILABLE (503).
    gone = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    h = _broker(tmp_path, keys["new_es"], gone)
    ear = attest(h)["token"]
    assert _verify(h, ear)["valid"] is True
    with pytest.raises(BrokerError) as info:  # /jwks does read it, and says so
        h.broker.jwks()
    assert info.value.code.name == "SIGNER_UNAVAILABLE"
