from datetime import timedelta

import pytest
from attestation_broker.ledger import SqliteLedger
from attestation_broker.nonce import NONCE_BYTES, NonceService

from tests.support.broker import FIXED_NOW

SECRET = bytes(range(32))


@pytest.fixture
def service(tmp_path):  # type: ignore[no-untyped-def]
    return NonceService(SECRET, ttl=timedelta(minutes=5), ledger=SqliteLedger(tmp_path / "ledger.db"))


def test_issue_and_check_round_trip(service) -> None:  # type: ignore[no-untyped-def]
    nonce = service.issue(FIXED_NOW)
    assert len(nonce.raw) == NONCE_BYTES and len(nonce.value) == 2 * NONCE_BYTES
    assert nonce.expires_at - nonce.issued_at == timedelta(minutes=5)
    checked = service.check(nonce.value, FIXED_NOW + timedelta(minutes=4))
    assert checked.raw == nonce.raw


def test_nonces_are_unique(service) -> None:  # type: ignore[no-untyped-def]
    assert len({service.issue(FIXED_NOW).value for _ in range(50)}) == 50


def _flip(value: str, index: int) -> str:
    raw = bytearray(bytes.fromhex(value))
    raw[index] ^= 1
    return raw.hex()


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda v: v[:-2], "NONCE_MALFORMED"),
        (lambda v: "zz" + v[2:], "NONCE_MALFORMED"),
        (lambda v: "02" + v[2:], "NONCE_MALFORMED"),
        (lambda v: _flip(v, 20), "NONCE_FORGED"),  # random part
        (lambda v: _flip(v, 5), "NONCE_FORGED"),  # issued-at
        (lambda v: _flip(v, 56), "NONCE_FORGED"),  # MAC
    ],
)
def test_tampered_nonces_are_rejected(service, mutate, code) -> None:  # type: ignore[no-untyped-def]
    value = service.issue(FIXED_NOW).value
    with pytest.raises(Exception) as info:
        service.check(mutate(value), FIXED_NOW)
    assert info.value.code.name == code


def test_other_secret_is_forged(service) -> None:  # type: ignore[no-untyped-def]
    other = NonceService(bytes(32), ledger=None)
    with pytest.raises(Exception) as info:
        service.check(other.issue(FIXED_NOW).value, FIXED_NOW)
    assert info.value.code.name == "NONCE_FORGED"


def test_expired_and_future(service) -> None:  # type: ignore[no-untyped-def]
    value = service.issue(FIXED_NOW).value
    with pytest.raises(Exception) as info:
        service.check(value, FIXED_NOW + timedelta(minutes=5, seconds=1))
    assert info.value.code.name == "NONCE_EXPIRED"
    future = service.issue(FIXED_NOW + timedelta(minutes=2)).value
    with pytest.raises(Exception) as info:
        service.check(future, FIXED_NOW)
    assert info.value.code.name == "NONCE_FROM_FUTURE"


def test_replay_is_rejected_by_ledger(service) -> None:  # type: ignore[no-untyped-def]
    value = service.issue(FIXED_NOW).value
    service.check(value, FIXED_NOW)
    with pytest.raises(Exception) as info:
        service.check(value, FIXED_NOW)
    assert info.value.code.name == "NONCE_REPLAYED"
    assert info.value.status == 403


def test_without_ledger_reuse_is_allowed() -> None:
    service = NonceService(SECRET, ledger=None)
    value = service.issue(FIXED_NOW).value
    service.check(value, FIXED_NOW)
    service.check(value, FIXED_NOW)


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        NonceService(b"short")
