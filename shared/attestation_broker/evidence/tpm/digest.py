"""Hash helpers keyed by TPM_ALG_ID or bank name (TPM 2.0 Part 2 §6.3); the event-log replay extends PCRs
(Part 1 §17.2) with :func:`hash_function`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes

from .abi import ALG_SHA1, ALG_SHA256, ALG_SHA384, ALG_SHA512, DIGEST_SIZES, HASH_IDS
from .errors import TPM_PCRS_MALFORMED

_HASHLIB: dict[int, str] = {ALG_SHA1: "sha1", ALG_SHA256: "sha256", ALG_SHA384: "sha384", ALG_SHA512: "sha512"}
# The constructors themselves: ``hashlib.new(name)`` resolves the name on every call (an event-log replay hashes
# twice per event).
_CONSTRUCTORS: dict[int, Callable[[bytes], Any]] = {
    ALG_SHA1: hashlib.sha1,
    ALG_SHA256: hashlib.sha256,
    ALG_SHA384: hashlib.sha384,
    ALG_SHA512: hashlib.sha512,
}


def hash_bytes(alg: int, data: bytes) -> bytes:
    constructor = _CONSTRUCTORS.get(alg)
    if constructor is None:
        raise TPM_PCRS_MALFORMED(f"hash algorithm 0x{alg:04x} is not supported")
    digest: bytes = constructor(data).digest()
    return digest


def hash_function(alg: int) -> Callable[[bytes], Any]:
    """The ``hashlib`` constructor for a TPM hash algorithm id (``hash_function(alg)(data).digest()``), for loops
    that hash many times with one algorithm."""
    constructor = _CONSTRUCTORS.get(alg)
    if constructor is None:
        raise TPM_PCRS_MALFORMED(f"hash algorithm 0x{alg:04x} is not supported")
    return constructor


def crypto_hash(alg: int) -> hashes.HashAlgorithm:
    """The ``cryptography`` hash for a TPM hash algorithm id (one shared, stateless instance per algorithm)."""
    found = _CRYPTO_HASHES.get(alg)
    if found is None:
        raise TPM_PCRS_MALFORMED(f"hash algorithm 0x{alg:04x} is not supported")
    return found


_CRYPTO_HASHES: dict[int, hashes.HashAlgorithm] = {
    ALG_SHA1: hashes.SHA1(),  # noqa: S303 - TPM quotes may legitimately use SHA-1 signing schemes
    ALG_SHA256: hashes.SHA256(),
    ALG_SHA384: hashes.SHA384(),
    ALG_SHA512: hashes.SHA512(),
}


def bank_alg(bank: str) -> int:
    """TPM_ALG_ID of a PCR bank name ("sha1", "sha256", "sha384", "sha512")."""
    alg = HASH_IDS.get(bank.lower().replace("-", ""))
    if alg is None or alg not in _HASHLIB:
        raise TPM_PCRS_MALFORMED(f"unknown PCR bank {bank[:16]!r}")
    return alg


def digest_size(alg: int) -> int:
    return DIGEST_SIZES[alg]
