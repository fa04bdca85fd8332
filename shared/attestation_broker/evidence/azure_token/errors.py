"""Error codes specific to ``azure-token`` (Microsoft Azure Attestation tokens).

Token-generic failures use the ``UPSTREAM_TOKEN_*`` codes of :mod:`attestation_broker.evidence.jose.errors` and the
generic codes of :mod:`attestation_broker.errors`.
"""

from __future__ import annotations

from attestation_broker.errors import VerificationFailed, define

AZURE_TOKEN_TEE_UNKNOWN = define(
    "AZURE_TOKEN_TEE_UNKNOWN", VerificationFailed, "The MAA token names an isolation type the broker does not know."
)
