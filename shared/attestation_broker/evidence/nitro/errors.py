"""Error codes specific to AWS Nitro Enclaves attestation documents.

Chain and binding failures reuse the broker-wide codes (CERT_CHAIN_INVALID, CERT_EXPIRED,
NONCE_BINDING_MISMATCH, MALFORMED_EVIDENCE for undecodable base64).
"""

from __future__ import annotations

from attestation_broker.errors import MalformedInput, VerificationFailed, define

NITRO_DOCUMENT_TOO_LARGE = define(
    "NITRO_DOCUMENT_TOO_LARGE", MalformedInput, "The Nitro attestation document exceeds the size limit."
)
NITRO_COSE_MALFORMED = define(
    "NITRO_COSE_MALFORMED", MalformedInput, "The Nitro attestation document is not a strict CBOR COSE_Sign1."
)
NITRO_ALG_UNSUPPORTED = define(
    "NITRO_ALG_UNSUPPORTED",
    VerificationFailed,
    "The COSE protected header does not carry exactly alg ES384 (-35).",
)
NITRO_PAYLOAD_INVALID = define(
    "NITRO_PAYLOAD_INVALID",
    MalformedInput,
    "The Nitro attestation document payload violates the AWS field rules.",
)
NITRO_SIGNATURE_INVALID = define(
    "NITRO_SIGNATURE_INVALID",
    VerificationFailed,
    "The COSE_Sign1 ES384 signature does not verify with the document certificate.",
)
NITRO_DOCUMENT_FROM_FUTURE = define(
    "NITRO_DOCUMENT_FROM_FUTURE", VerificationFailed, "The Nitro attestation document timestamp is in the future."
)
