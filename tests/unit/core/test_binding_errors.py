import hashlib
import re
from pathlib import Path

import pytest
from attestation_broker.binding import ExpectedBinding, require_equal
from attestation_broker.errors import CATALOGUE, MalformedInput, define
from attestation_broker.registry import default_verifiers

README = Path(__file__).resolve().parents[3] / "README.md"


def test_bindings_are_exact_digests() -> None:
    b = ExpectedBinding(b"n" * 57, b"user")
    assert b.report_data() == hashlib.sha512(b"n" * 57 + b"user").digest()
    assert len(b.report_data()) == 64
    assert b.tpm_extra_data() == hashlib.sha256(b"n" * 57 + b"user").digest()
    assert b.nitro_nonce() == hashlib.sha256(b"n" * 57 + b"user").digest()
    assert b.token_nonce() == (b"n" * 57).hex()


@pytest.mark.parametrize(
    "actual",
    [
        hashlib.sha512(b"x").digest()[:32],  # truncated
        hashlib.sha512(b"x").digest() + b"\0",  # padded
        bytes(64),
    ],
)
def test_require_equal_rejects_anything_but_exact(actual: bytes) -> None:
    with pytest.raises(Exception) as info:
        require_equal("t", actual, hashlib.sha512(b"x").digest())
    assert info.value.code.name == "NONCE_BINDING_MISMATCH"
    require_equal("t", hashlib.sha512(b"x").digest(), hashlib.sha512(b"x").digest())


def test_codes_cannot_be_declared_twice() -> None:
    with pytest.raises(RuntimeError):
        define("MALFORMED_REQUEST", MalformedInput, "again")
    with pytest.raises(RuntimeError):
        define("lower_case", MalformedInput, "bad name")


def test_readme_documents_every_error_code() -> None:
    default_verifiers()  # import every kind so its codes are declared
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \| (\d{3}) \|", README.read_text(), re.MULTILINE))
    expected = {(name, str(code.status)) for name, code in CATALOGUE.items()}
    assert expected - documented == set(), "run `attestation-broker errors` and update README"
