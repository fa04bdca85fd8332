import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import jwt
import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import Appraisal
from attestation_broker.token.issuer import TokenService
from attestation_broker.token.keys import KeyRing, RetiredKey, local_keyring, rotate_local
from attestation_broker.token.signers import LocalSigner

from tests.support.broker import FIXED_NOW

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "shared/attestation_broker/token/schema.json").read_text())

APPRAISAL = Appraisal(
    kind="snp",
    trustworthiness_vector={"hardware": ar4si.HW_GENUINE, "runtime-opaque": ar4si.RUNTIME_ENCRYPTED},
    attester_claims={
        "tee": "sev-snp",
        "platform": "gcp",
        "measurement": "ab" * 48,
        "dbgstat": "disabled",
        "tcb": {"status": "UpToDate"},
        "instance": {"id": "123"},
    },
    verifier_claims={"bindings": {"nonce": "checked"}},
    policy_ids=("unit-test@sha256:" + "0" * 32,),
    cnf={"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}},
)


def service(keyring: KeyRing | None = None) -> TokenService:
    return TokenService(
        keyring or KeyRing(LocalSigner.generate()),
        issuer="https://broker.test",
        audience="rp",
        ttl=timedelta(minutes=5),
    )


def test_kid_is_rfc7638_thumbprint() -> None:
    signer = LocalSigner.generate()
    jwk = signer.public_jwk()
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert jwk["kid"] == expected == signer.key_id


def test_token_verifies_with_pyjwt_and_jwks_and_matches_schema() -> None:
    svc = service()
    claims = svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=b"\x01\x02")
    token = svc.sign(claims)
    jsonschema.validate(claims, SCHEMA)
    header = jwt.get_unverified_header(token)
    jwk = next(k for k in svc.keyring.jwks(FIXED_NOW)["keys"] if k["kid"] == header["kid"])
    decoded = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience="rp",
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert decoded == claims
    assert decoded["eat_nonce"] == "0102"
    assert decoded["ear_status"] == "affirming"
    assert decoded["sub"] == "snp:gcp:123"
    assert decoded["submods"]["snp"]["ear_verifier_claims"]["evidence_sha256"] == "0" * 64
    assert decoded["cnf"] == APPRAISAL.cnf
    assert svc.verify(token, now=FIXED_NOW) == claims


def test_status_is_worst_tier() -> None:
    debug = Appraisal(
        kind="snp",
        trustworthiness_vector={"hardware": 2, "runtime-opaque": 96},
        attester_claims={"tee": "sev-snp", "platform": "unknown"},
    )
    claims = service().claims_for(debug, evidence_sha256="1" * 64, now=FIXED_NOW, nonce=None)
    assert claims["ear_status"] == "contraindicated"
    assert "eat_nonce" not in claims
    assert claims["sub"] == "snp:evidence:" + "1" * 64


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "TOKEN_INVALID"),
        (lambda t: "x.y", "TOKEN_MALFORMED"),
        (lambda t: "a" * 70000, "TOKEN_MALFORMED"),
    ],
)
def test_tampered_tokens(mutate, code) -> None:  # type: ignore[no-untyped-def]
    svc = service()
    token = svc.sign(svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=None))
    with pytest.raises(Exception) as info:
        svc.verify(mutate(token), now=FIXED_NOW)
    assert info.value.code.name == code


def test_expiry_audience_issuer_and_foreign_key() -> None:
    svc = service()
    token = svc.sign(svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=None))
    with pytest.raises(Exception) as info:
        svc.verify(token, now=FIXED_NOW + timedelta(minutes=5))
    assert info.value.code.name == "TOKEN_EXPIRED"
    with pytest.raises(Exception) as info:
        svc.verify(token, now=FIXED_NOW, audience="other")
    assert info.value.code.name == "TOKEN_INVALID"
    other = service()
    with pytest.raises(Exception) as info:
        other.verify(token, now=FIXED_NOW)
    assert info.value.code.name == "TOKEN_INVALID"
    # HS256 with the public key as secret must never verify.
    forged = jwt.encode(
        {"iss": "https://broker.test"}, "secret", algorithm="HS256", headers={"kid": svc.keyring.active.key_id}
    )
    with pytest.raises(Exception) as info:
        svc.verify(forged, now=FIXED_NOW)
    assert info.value.code.name == "TOKEN_INVALID"


def test_rotation_keeps_old_key_published_for_overlap(tmp_path: Path) -> None:
    ring = local_keyring(tmp_path)
    svc = service(ring)
    old_token = svc.sign(svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=None))
    old_kid, new_kid = rotate_local(tmp_path, now=FIXED_NOW, overlap=timedelta(hours=1))
    assert old_kid != new_kid
    rotated = local_keyring(tmp_path)
    assert rotated.active.key_id == new_kid
    assert [k["kid"] for k in rotated.published(FIXED_NOW)] == [new_kid, old_kid]
    assert [k["kid"] for k in rotated.published(FIXED_NOW + timedelta(hours=2))] == [new_kid]
    assert service(rotated).verify(old_token, now=FIXED_NOW)["jti"]


def test_local_key_is_persisted_private(tmp_path: Path) -> None:
    first = local_keyring(tmp_path).active.key_id
    assert local_keyring(tmp_path).active.key_id == first
    assert (tmp_path / "signing-key.pem").stat().st_mode & 0o077 == 0


def test_retired_key_equal_to_active_not_listed_twice() -> None:
    signer = LocalSigner.generate()
    ring = KeyRing(signer, (RetiredKey(signer.public_jwk(), FIXED_NOW + timedelta(hours=1)),))
    assert len(ring.published(FIXED_NOW)) == 1
