"""Error codes of the ``nvidia-token`` kind (NVIDIA Remote Attestation Service detached EATs).

Token-level failures reuse the upstream-token codes of :mod:`attestation_broker.evidence.jose.errors`.
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

NRAS_EAT_MALFORMED = define(
    "NRAS_EAT_MALFORMED",
    MalformedInput,
    'The NRAS result is not a detached EAT [["JWT", overall], {"GPU-0": jwt, ...}].',
)
NRAS_SUBMOD_DIGEST_MISMATCH = define(
    "NRAS_SUBMOD_DIGEST_MISMATCH",
    VerificationFailed,
    "The overall NRAS token's submods do not name exactly the device tokens supplied, with their SHA-256.",
)
