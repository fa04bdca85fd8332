"""Broker token verification refuses malleable and malformed tokens with typed errors; local state files
are owner-only; retired private keys are deleted once their overlap has ended."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from attestation_broker.errors import BrokerError
from attestation_broker.token.keys import KeyRing, local_keyring, prune_retired, rotate_local
from attestation_broker.token.signers import P256_ORDER, LocalRsaSigner, LocalSigner, der_to_jose
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.support.broker import FIXED_NOW, make_harness
from tests.unit.core.test_tokens import APPRAISAL, service


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _code(fn: Any) -> str:
    with pytest.raises(BrokerError) as exc:
        fn()
    assert exc.value.status < 500
    return exc.value.code.name


def test_high_s_variant_of_a_valid_token_is_refused() -> None:
    svc = service()
    token = svc.sign(svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=None))
    assert svc.verify(token, now=FIXED_NOW, audience="rp")["jti"]
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    assert s <= P256_ORDER // 2  # the broker signs low-S only
    flipped = ".".join((head, payload, _b64url(r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big"))))
    assert _code(lambda: svc.verify(flipped, now=FIXED_NOW, audience="rp")) == "TOKEN_INVALID"


def test_signer_normalizes_every_signature_to_low_s() -> None:
    high = P256_ORDER - 5
    assert der_to_jose(encode_dss_signature(7, high))[32:] == (5).to_bytes(32, "big")
    signer = LocalSigner.generate()
    for i in range(64):
        assert int.from_bytes(signer.sign(b"%d" % i)[32:], "big") <= P256_ORDER // 2


@pytest.mark.parametrize(
    ("claim", "value", "code"),
    [
        ("exp", "99999999999", "TOKEN_INVALID"),
        ("exp", 1e300, "TOKEN_INVALID"),
        ("exp", True, "TOKEN_INVALID"),
        ("exp", 10**20, "TOKEN_INVALID"),
        ("nbf", "abc", "TOKEN_INVALID"),
        ("nbf", -1, "TOKEN_INVALID"),
        ("iat", [1], "TOKEN_INVALID"),
        ("iat", None, "TOKEN_INVALID"),
    ],
)
def test_time_claims_must_be_integer_numeric_dates(claim: str, value: object, code: str) -> None:
    svc = service()
    claims = dict(svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=None))
    claims[claim] = value
    token = svc.sign(claims)
    assert _code(lambda: svc.verify(token, now=FIXED_NOW, audience="rp")) == code


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_and_secrets_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # an existing, too-open data dir is tightened
    h = make_harness(tmp_path)
    h.broker.challenge()
    assert _mode(data) == 0o700
    secrets = [p for p in data.iterdir() if p.is_file()]
    assert {p.name for p in secrets} >= {"signing-key.pem", "nonce-secret", "replay-ledger.sqlite3"}
    for path in secrets:
        assert _mode(path) == 0o600, path.name


def test_retired_private_keys_are_deleted_after_their_overlap(tmp_path: Path) -> None:
    data = tmp_path / "data"
    local_keyring(data)
    first, _ = rotate_local(data, now=FIXED_NOW, overlap=timedelta(hours=1))
    assert (data / f"retired-{first}.pem").exists() and _mode(data / f"retired-{first}.pem") == 0o600
    # still inside the first key's overlap: both archived keys stay
    second, _ = rotate_local(data, now=FIXED_NOW + timedelta(minutes=30), overlap=timedelta(hours=1))
    assert (data / f"retired-{first}.pem").exists() and (data / f"retired-{second}.pem").exists()
    # after the first overlap: its private key is gone, its public key no longer published
    third, _ = rotate_local(data, now=FIXED_NOW + timedelta(hours=2), overlap=timedelta(hours=1))
    assert not (data / f"retired-{first}.pem").exists() and not (data / f"retired-{second}.pem").exists()
    assert (data / f"retired-{third}.pem").exists()
    kids = {k["kid"] for k in local_keyring(data).jwks(FIXED_NOW + timedelta(hours=2))["keys"]}
    assert third in kids and first not in kids and second not in kids
    assert prune_retired(data, keep=set()) == [third]


def _signed(svc: Any, header: dict[str, Any] | str, payload: dict[str, Any] | str) -> str:
    """A token signed by the service's own key over an arbitrary header and payload (the JSON text as given)."""

    def seg(part: dict[str, Any] | str) -> str:
        return _b64url((part if isinstance(part, str) else json.dumps(part)).encode())

    signing_input = seg(header) + "." + seg(payload)
    return signing_input + "." + _b64url(svc.keyring.active.sign(signing_input.encode()))


def _claims(svc: Any) -> dict[str, Any]:
    return dict(svc.claims_for(APPRAISAL, evidence_sha256="0" * 64, now=FIXED_NOW, nonce=None))


@pytest.mark.parametrize(
    ("build", "code"),
    [
        # Well-formed and signed by the broker's key, but not a token the broker issues.
        (lambda svc, h, c: _signed(svc, {**h, "crit": ["exp"]}, c), "TOKEN_INVALID"),
        (lambda svc, h, c: _signed(svc, {**h, "alg": "none"}, c), "TOKEN_INVALID"),
        (lambda svc, h, c: _signed(svc, {**h, "kid": 7}, c), "TOKEN_INVALID"),
        (lambda svc, h, c: _signed(svc, h, {k: v for k, v in c.items() if k != "jti"}), "TOKEN_INVALID"),
        (lambda svc, h, c: _signed(svc, h, {**c, "iss": "https://other.test"}), "TOKEN_INVALID"),
        (lambda svc, h, c: _signed(svc, h, {**c, "aud": ["x", "y"]}), "TOKEN_INVALID"),
        # Two parsers could read a duplicated member differently: refused before the signature is looked at.
        (lambda svc, h, c: _signed(svc, h, '{"aud":"x",' + json.dumps(c)[1:]), "TOKEN_MALFORMED"),
        (lambda svc, h, c: _signed(svc, h, "[1,2]"), "TOKEN_MALFORMED"),
        (lambda svc, h, c: _signed(svc, h, c) + "=", "TOKEN_MALFORMED"),
        (lambda svc, h, c: _signed(svc, h, c) + ".x", "TOKEN_MALFORMED"),
        (lambda svc, h, c: _signed(svc, h, c)[:-2], "TOKEN_INVALID"),
        (lambda svc, h, c: _signed(svc, h, c).replace(".", ".\u00e9", 1), "TOKEN_MALFORMED"),
    ],
)
def test_tokens_signed_by_the_broker_key_but_not_issued_by_it_are_refused(build: Any, code: str) -> None:
    svc = service()
    header = {"alg": "ES256", "kid": svc.keyring.active.key_id, "typ": "JWT"}
    claims = _claims(svc)
    assert svc.verify(_signed(svc, header, claims), now=FIXED_NOW, audience="rp") == claims
    assert _code(lambda: svc.verify(build(svc, header, claims), now=FIXED_NOW, audience="rp")) == code


def test_audience_list_containing_the_audience_verifies_and_rsa_kid_is_not_an_es256_key() -> None:
    svc = service(KeyRing(LocalSigner.generate(), extra=(LocalRsaSigner.generate(),)))
    header = {"alg": "ES256", "kid": svc.keyring.active.key_id, "typ": "JWT"}
    claims = {**_claims(svc), "aud": ["other", "rp"]}
    assert svc.verify(_signed(svc, header, claims), now=FIXED_NOW, audience="rp")["aud"] == ["other", "rp"]
    rsa_kid = svc.keyring.signer_for("RS256").key_id
    forged = _signed(svc, {**header, "kid": rsa_kid}, claims)
    assert _code(lambda: svc.verify(forged, now=FIXED_NOW, audience="rp")) == "TOKEN_INVALID"
