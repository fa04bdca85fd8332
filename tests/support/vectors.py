"""Access to the real test vectors in tests/vectors/, checked against SHA256SUMS on first use."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


@cache
def _sums() -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in (VECTORS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = digest
    return sums


def vector_path(name: str) -> Path:
    return VECTORS / name


def vector(name: str) -> bytes:
    """Bytes of tests/vectors/<name>; fails if the file differs from its recorded SHA-256."""
    data = (VECTORS / name).read_bytes()
    expected = _sums().get(name)
    if expected is None:
        raise AssertionError(f"{name} is not listed in tests/vectors/SHA256SUMS")
    if hashlib.sha256(data).hexdigest() != expected:
        raise AssertionError(f"{name} does not match its recorded SHA-256")
    return data
