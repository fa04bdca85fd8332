"""Freshness bindings: how a broker nonce (and optional user data) is bound into each kind of evidence.

docs/evidence.md "Nonce binding". One function per binding, each exact: no padding, no truncation, no
"starts with" comparisons. ``nonce`` is always the raw nonce bytes (the hex-decoded value returned
by ``POST /v1/challenge``); ``user_data`` is caller-chosen bytes (for example a public key hash).

| evidence                                   | bound value                                      |
|--------------------------------------------|--------------------------------------------------|
| SEV-SNP REPORT_DATA, TDX REPORTDATA (64 B) | SHA-512(nonce ‖ user_data)                       |
| TPM2 quote extraData (TPM2B_DATA ≤ 64 B)   | SHA-256(nonce ‖ user_data)                       |
| Azure HCL runtime JSON ``user-data``       | hex(SHA-512(nonce ‖ user_data)), upper or lower  |
| Nitro ``nonce`` field                      | SHA-256(nonce ‖ user_data)                       |
| upstream token ``eat_nonce`` / ``nonce``   | hex(nonce) exactly, when user_data is empty      |
| NVIDIA SPDM requester nonce (32 B)         | SHA-256(nonce ‖ user_data)                       |

NVIDIA GPUs and NVSwitches: the 32-byte ``Nonce`` of the SPDM 1.1 GET_MEASUREMENTS request (report
bytes 4..35, right after ``11 e0 01 ff``) is SHA-256(nonce ‖ user_data), so every device of a
composite CPU + GPU attestation carries the same value as the CPU evidence's binding source.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from attestation_broker.errors import NONCE_BINDING_MISMATCH


@dataclass(frozen=True)
class ExpectedBinding:
    """The nonce and user data a piece of evidence must carry."""

    nonce: bytes
    user_data: bytes = field(default=b"")

    def report_data(self) -> bytes:
        """SEV-SNP REPORT_DATA / TDX REPORTDATA: 64 bytes."""
        return hashlib.sha512(self.nonce + self.user_data).digest()

    def tpm_extra_data(self) -> bytes:
        """TPM2 quote qualifying data (extraData): 32 bytes."""
        return hashlib.sha256(self.nonce + self.user_data).digest()

    def azure_user_data(self) -> bytes:
        """Azure HCL runtime JSON ``user-data`` as raw bytes (the JSON carries their hex): 64 bytes."""
        return hashlib.sha512(self.nonce + self.user_data).digest()

    def nitro_nonce(self) -> bytes:
        """AWS Nitro attestation document ``nonce``: 32 bytes."""
        return hashlib.sha256(self.nonce + self.user_data).digest()

    def spdm_nonce(self) -> bytes:
        """NVIDIA SPDM GET_MEASUREMENTS requester nonce: 32 bytes."""
        return hashlib.sha256(self.nonce + self.user_data).digest()

    def token_nonce(self) -> str:
        """Upstream token ``eat_nonce``/``nonce`` claim: lowercase hex of the nonce bytes."""
        return self.nonce.hex()


def require_equal(kind: str, actual: bytes, expected: bytes) -> None:
    """Constant-time exact comparison; raise NONCE_BINDING_MISMATCH naming the binding only."""
    if len(actual) != len(expected) or not hmac.compare_digest(actual, expected):
        raise NONCE_BINDING_MISMATCH(f"{kind} does not bind the expected nonce")
