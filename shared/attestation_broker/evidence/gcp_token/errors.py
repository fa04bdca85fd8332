"""Error codes specific to ``gcp-token`` (Google Cloud Attestation / Confidential Space tokens).

Token-generic failures use the ``UPSTREAM_TOKEN_*`` codes of :mod:`attestation_broker.evidence.jose.errors` and the
generic codes of :mod:`attestation_broker.errors`.
"""

from __future__ import annotations

from attestation_broker.errors import VerificationFailed, define

GCP_TOKEN_HWMODEL_UNKNOWN = define(
    "GCP_TOKEN_HWMODEL_UNKNOWN", VerificationFailed, "The token's hwmodel is not a known Google hardware model."
)
GCP_TOKEN_DISCOVERY_INVALID = define(
    "GCP_TOKEN_DISCOVERY_INVALID", VerificationFailed, "The issuer's OpenID discovery document is unusable."
)
