"""Error codes shared by the upstream-token kinds (``gcp-token``, ``azure-token``).

Generic codes from :mod:`attestation_broker.errors` are reused where they fit (TOKEN_MALFORMED, TOKEN_EXPIRED,
NONCE_BINDING_MISMATCH, COLLATERAL_*, CERT_*); the codes below name token checks that have no generic code.
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, PayloadTooLarge, VerificationFailed, define

UPSTREAM_TOKEN_TOO_LARGE = define(
    "UPSTREAM_TOKEN_TOO_LARGE", PayloadTooLarge, "The upstream token exceeds the token size limit."
)
UPSTREAM_TOKEN_ALG_REJECTED = define(
    "UPSTREAM_TOKEN_ALG_REJECTED", VerificationFailed, "The upstream token's signing algorithm is not allowed."
)
UPSTREAM_TOKEN_HEADER_REJECTED = define(
    "UPSTREAM_TOKEN_HEADER_REJECTED", VerificationFailed, "The upstream token header carries an unsupported field."
)
UPSTREAM_TOKEN_ISSUER_UNTRUSTED = define(
    "UPSTREAM_TOKEN_ISSUER_UNTRUSTED", VerificationFailed, "The upstream token's issuer is not a pinned issuer."
)
UPSTREAM_TOKEN_KEY_UNKNOWN = define(
    "UPSTREAM_TOKEN_KEY_UNKNOWN", VerificationFailed, "The upstream token's key id is not in the issuer's key set."
)
UPSTREAM_TOKEN_SIGNATURE_INVALID = define(
    "UPSTREAM_TOKEN_SIGNATURE_INVALID", VerificationFailed, "The upstream token's signature does not verify."
)
UPSTREAM_TOKEN_NOT_YET_VALID = define(
    "UPSTREAM_TOKEN_NOT_YET_VALID", VerificationFailed, "The upstream token is not valid yet (nbf/iat ahead)."
)
UPSTREAM_TOKEN_AUDIENCE_MISMATCH = define(
    "UPSTREAM_TOKEN_AUDIENCE_MISMATCH", VerificationFailed, "The upstream token's audience is not an accepted audience."
)
UPSTREAM_TOKEN_CLAIMS_INVALID = define(
    "UPSTREAM_TOKEN_CLAIMS_INVALID", VerificationFailed, "A required upstream token claim is missing or mistyped."
)
UPSTREAM_TOKEN_MISSING = define("UPSTREAM_TOKEN_MISSING", MalformedInput, "No upstream token was submitted.")
