"""Typed errors with stable codes (docs/architecture.md "Errors", RFC 9457 problem details).

Every failure in the broker is a :class:`BrokerError` subclass carrying an :class:`ErrorCode`.
Codes are declared once with :func:`define` and collected in :data:`CATALOGUE`; declaring the same
code twice fails at import, so a code can never silently change meaning. The category class fixes
the HTTP status and the CLI exit code; the README's error table is checked against the catalogue.

Error ``detail`` strings are shown to clients: they must never contain evidence bytes or secrets.

CLI exit codes (the ``exit`` column of the README error table), one per category:

* 0 — verified (affirming or warning);
* 1 — refused: verification or policy failure, or a contraindicated result (HTTP 403);
* 2 — unusable input or configuration: malformed evidence, unreadable file, unknown kind, bad settings
  (HTTP 400/404/413/415/500);
* 3 — could not decide: a dependency is unavailable (vendor collateral, signer, ledger; HTTP 503) or the
  broker is rate limited (429). Retry later or supply the collateral (``--collateral DIR``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


class BrokerError(Exception):
    """Base of every broker error. Subclasses fix the HTTP status and CLI exit code."""

    status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    title: ClassVar[str] = "Broker error"

    def __init__(self, code: ErrorCode, detail: str = "", *, retry_after: int | None = None) -> None:
        self.code = code
        self.detail = detail or code.description
        self.retry_after = retry_after
        # Set once an audit record names this error, so the HTTP edge never writes a second one.
        self.audited = False
        super().__init__(f"{code.name}: {self.detail}")


class MalformedInput(BrokerError):
    """The input cannot be parsed or is structurally invalid (HTTP 400, CLI exit 2)."""

    status = 400
    exit_code = 2
    title = "Malformed input"


class VerificationFailed(BrokerError):
    """A signature, chain, binding, freshness or collateral check failed (HTTP 403)."""

    status = 403
    title = "Verification failed"


class PolicyViolation(BrokerError):
    """The evidence verified but the appraisal policy rejects it (HTTP 403)."""

    status = 403
    title = "Policy violation"


class PolicyRejected(PolicyViolation):
    """The issuance contract refused a verified result (docs/policy.md "Issuance contract").

    ``failed_rules``: one ``{policy, rule, expected, actual, detail}`` mapping per failed rule (claim values
    and short summaries only — no secrets, no evidence bytes); rendered as the ``failed_rules`` extension
    member of the problem document. ``appraisal``: the claims the broker would have signed (no token).
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str = "",
        *,
        retry_after: int | None = None,
        failed_rules: Sequence[Mapping[str, Any]] = (),
        appraisal: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code, detail, retry_after=retry_after)
        self.failed_rules = tuple(failed_rules)
        self.appraisal = appraisal


class NotFound(BrokerError):
    status = 404
    exit_code = 2
    title = "Not found"


class MethodNotAllowed(BrokerError):
    status = 405
    exit_code = 2
    title = "Method not allowed"


class PayloadTooLarge(BrokerError):
    status = 413
    exit_code = 2
    title = "Payload too large"


class UnsupportedMediaType(BrokerError):
    status = 415
    exit_code = 2
    title = "Unsupported media type"


class RequestTimeout(BrokerError):
    """The client did not send its request within the server's deadline (HTTP 408)."""

    status = 408
    exit_code = 2
    title = "Request timeout"


class RateLimited(BrokerError):
    status = 429
    exit_code = 3
    title = "Too many requests"


class Unavailable(BrokerError):
    """A dependency (vendor collateral, signer, ledger) is unavailable; retry later (HTTP 503, CLI exit 3)."""

    status = 503
    exit_code = 3
    title = "Service unavailable"

    def __init__(self, code: ErrorCode, detail: str = "", *, retry_after: int | None = 30) -> None:
        super().__init__(code, detail, retry_after=retry_after)


class ConfigError(BrokerError):
    """The broker itself is misconfigured (HTTP 500, CLI exit 2)."""

    status = 500
    exit_code = 2
    title = "Broker configuration error"


@dataclass(frozen=True)
class ErrorCode:
    """A stable, documented error code bound to its category."""

    name: str
    category: type[BrokerError]
    description: str

    def __call__(self, detail: str = "", *, retry_after: int | None = None) -> BrokerError:
        """Build the exception: ``raise SNP_SIGNATURE_INVALID("...")``."""
        if retry_after is not None:
            return self.category(self, detail, retry_after=retry_after)
        return self.category(self, detail)

    @property
    def status(self) -> int:
        return self.category.status

    @property
    def exit_code(self) -> int:
        return self.category.exit_code


CATALOGUE: dict[str, ErrorCode] = {}

REFLECT_LIMIT = 64


def reflect(value: object, limit: int = REFLECT_LIMIT) -> str:
    """Client input quoted for a detail string, cut to ``limit`` characters: details echo enough to
    recognize the input, never a multi-kilobyte payload (or a log line built from one)."""
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def define(name: str, category: type[BrokerError], description: str) -> ErrorCode:
    """Declare a code once; a second declaration of the same name is a programming error."""
    if name in CATALOGUE:
        raise RuntimeError(f"error code {name} declared twice")
    if not name.isupper() or not name.replace("_", "").isalnum():
        raise RuntimeError(f"error code {name!r} must be UPPER_SNAKE_CASE")
    code = ErrorCode(name, category, description)
    CATALOGUE[name] = code
    return code


# Codes shared by the whole broker. Evidence kinds declare theirs in their own errors module.
MALFORMED_REQUEST = define("MALFORMED_REQUEST", MalformedInput, "The request body or parameters are malformed.")
MALFORMED_EVIDENCE = define("MALFORMED_EVIDENCE", MalformedInput, "The evidence cannot be decoded.")
UNREADABLE_FILE = define("UNREADABLE_FILE", MalformedInput, "A file named on the command line cannot be read.")
UNSUPPORTED_MEDIA_TYPE = define(
    "UNSUPPORTED_MEDIA_TYPE", UnsupportedMediaType, "The request content type is not accepted on this route."
)
PAYLOAD_TOO_LARGE = define("PAYLOAD_TOO_LARGE", PayloadTooLarge, "The request body exceeds the size limit.")
ROUTE_NOT_FOUND = define("ROUTE_NOT_FOUND", NotFound, "No such route.")
METHOD_NOT_ALLOWED = define("METHOD_NOT_ALLOWED", MethodNotAllowed, "The route does not accept this method.")
UNKNOWN_EVIDENCE_KIND = define("UNKNOWN_EVIDENCE_KIND", NotFound, "The evidence kind is not supported.")
RATE_LIMITED = define("RATE_LIMITED", RateLimited, "Too many requests; retry later.")
HTTP_FRAMING_INVALID = define(
    "HTTP_FRAMING_INVALID", MalformedInput, "The HTTP message framing (method, Content-Length, chunks) is invalid."
)
REQUEST_TIMEOUT = define("REQUEST_TIMEOUT", RequestTimeout, "The request body did not arrive within the deadline.")

NONCE_MALFORMED = define("NONCE_MALFORMED", MalformedInput, "The nonce is not a broker nonce.")
NONCE_FORGED = define("NONCE_FORGED", VerificationFailed, "The nonce MAC does not verify.")
NONCE_EXPIRED = define("NONCE_EXPIRED", VerificationFailed, "The nonce is older than its time to live.")
NONCE_FROM_FUTURE = define("NONCE_FROM_FUTURE", VerificationFailed, "The nonce is issued in the future.")
NONCE_REPLAYED = define("NONCE_REPLAYED", VerificationFailed, "The nonce was already used.")
NONCE_REQUIRED = define("NONCE_REQUIRED", VerificationFailed, "Policy requires a broker nonce.")
NONCE_BINDING_MISMATCH = define(
    "NONCE_BINDING_MISMATCH", VerificationFailed, "The evidence does not bind the expected nonce."
)

COLLATERAL_UNAVAILABLE = define(
    "COLLATERAL_UNAVAILABLE", Unavailable, "Vendor collateral could not be obtained in time; retry later."
)
COLLATERAL_NOT_FOUND = define(
    "COLLATERAL_NOT_FOUND", VerificationFailed, "The vendor has no collateral for this platform (HTTP 404)."
)
COLLATERAL_INVALID = define("COLLATERAL_INVALID", VerificationFailed, "Vendor collateral failed verification.")
COLLATERAL_EXPIRED = define("COLLATERAL_EXPIRED", VerificationFailed, "Vendor collateral is past its validity.")
COLLATERAL_BUNDLE_INVALID = define(
    "COLLATERAL_BUNDLE_INVALID",
    MalformedInput,
    "A collateral bundle or recorded collateral directory (or a file given to import) is unreadable or malformed.",
)
CERT_CHAIN_INVALID = define(
    "CERT_CHAIN_INVALID", VerificationFailed, "A certificate chain does not verify to the pinned root."
)
CERT_EXPIRED = define("CERT_EXPIRED", VerificationFailed, "A certificate is outside its validity period.")
CERT_REVOKED = define("CERT_REVOKED", VerificationFailed, "A certificate is revoked by its issuer's CRL.")
POLICY_REJECTED = define(
    "POLICY_REJECTED",
    PolicyRejected,
    "The evidence verified but the result is not affirming or warning under the appraisal policy; no token.",
)

TOKEN_MALFORMED = define("TOKEN_MALFORMED", MalformedInput, "The token is not a well-formed JWT.")
TOKEN_INVALID = define("TOKEN_INVALID", VerificationFailed, "The token signature or claims do not verify.")
TOKEN_EXPIRED = define("TOKEN_EXPIRED", VerificationFailed, "The token has expired.")

# Token exchange (RFC 8693, POST /v1/token). The route answers with RFC 6749 §5.2 errors: see api/routes.py.
FEDERATION_REQUEST_INVALID = define(
    "FEDERATION_REQUEST_INVALID", MalformedInput, "The token exchange request is malformed (invalid_request)."
)
FEDERATION_GRANT_UNSUPPORTED = define(
    "FEDERATION_GRANT_UNSUPPORTED", MalformedInput, "The grant type is not token exchange (unsupported_grant_type)."
)
FEDERATION_AUDIENCE_NOT_ALLOWED = define(
    "FEDERATION_AUDIENCE_NOT_ALLOWED", MalformedInput, "The audience is not allowed for federation (invalid_target)."
)
FEDERATION_SUBJECT_REFUSED = define(
    "FEDERATION_SUBJECT_REFUSED",
    PolicyViolation,
    "The subject token is not an accepted broker appraisal; no credential is issued (invalid_grant).",
)
FEDERATION_CLAIM_LIMIT = define(
    "FEDERATION_CLAIM_LIMIT", ConfigError, "The federation token would break a cloud limit (sub, tags or size)."
)

SIGNER_UNAVAILABLE = define("SIGNER_UNAVAILABLE", Unavailable, "The token signer is unavailable.")
LEDGER_UNAVAILABLE = define("LEDGER_UNAVAILABLE", Unavailable, "The replay ledger is unavailable.")
CONFIG_INVALID = define("CONFIG_INVALID", ConfigError, "The broker configuration is invalid.")
INTERNAL_ERROR = define("INTERNAL_ERROR", ConfigError, "Unexpected internal error.")

# The input collector (attestation_broker.inputs): the same envelope rules for every evidence kind.
INPUT_FIELD_UNKNOWN = define(
    "INPUT_FIELD_UNKNOWN",
    MalformedInput,
    "An envelope field is not one this evidence kind accepts.",
)
INPUT_EXTRA_UNRECOGNIZED = define(
    "INPUT_EXTRA_UNRECOGNIZED", MalformedInput, "An extra file is not a part this evidence kind accepts."
)
INPUT_ROLE_DUPLICATE = define(
    "INPUT_ROLE_DUPLICATE", MalformedInput, "Two candidates were supplied for one part of the evidence."
)
INPUT_BASE64_INVALID = define("INPUT_BASE64_INVALID", MalformedInput, "A base64 value does not decode.")
