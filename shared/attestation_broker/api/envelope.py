"""Decoding of ``POST /v1/attest/{kind}`` bodies (docs/evidence.md "Submitting evidence").

Two forms:

* ``application/json`` envelope::

      {"evidence": "<base64>", "extras": ["<base64>", ...], "nonce": "<hex>",
       "user_data": "<base64>", ...kind-specific fields...}

  Unknown top-level keys are passed to the verifier as kind-specific ``fields``.
* raw evidence bytes (``application/octet-stream``, or ``application/jwt`` / ``text/plain`` for the
  token kinds), with the nonce in the ``Attestation-Nonce`` header and user data (base64) in
  ``Attestation-User-Data``.

Policy is never taken from the request: it is broker configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker import jsonlimits
from attestation_broker.api.http import HttpRequest
from attestation_broker.errors import MALFORMED_REQUEST, UNSUPPORTED_MEDIA_TYPE
from attestation_broker.inputs import decode_base64

JSON_TYPES = ("application/json",)
RAW_TYPES = ("application/octet-stream", "application/jwt", "text/plain", "application/cbor", "application/cose")
_RESERVED = {"evidence", "extras", "nonce", "user_data"}


@dataclass(frozen=True)
class Envelope:
    evidence: bytes
    extras: tuple[bytes, ...] = ()
    nonce: str | None = None
    user_data: bytes = b""
    fields: Mapping[str, Any] = field(default_factory=dict)


def b64decode(value: Any, name: str) -> bytes:
    """The broker's one base64 rule (:func:`attestation_broker.inputs.decode_base64`), as a request error."""
    return decode_base64(value, name, MALFORMED_REQUEST)


def parse_json_object(body: bytes) -> dict[str, Any]:
    doc = jsonlimits.loads(body, MALFORMED_REQUEST, "body")
    if not isinstance(doc, dict):
        raise MALFORMED_REQUEST("body must be a JSON object")
    return doc


def parse_attest(request: HttpRequest) -> Envelope:
    ctype = request.content_type
    if ctype in JSON_TYPES:
        doc = parse_json_object(request.body)
        if "evidence" not in doc:
            raise MALFORMED_REQUEST("missing 'evidence'")
        extras_raw = doc.get("extras", [])
        if not isinstance(extras_raw, list):
            raise MALFORMED_REQUEST("'extras' must be a list of base64 strings")
        nonce = doc.get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise MALFORMED_REQUEST("'nonce' must be a hex string")
        return Envelope(
            evidence=b64decode(doc["evidence"], "evidence"),
            extras=tuple(b64decode(x, f"extras[{i}]") for i, x in enumerate(extras_raw)),
            nonce=nonce,
            user_data=b64decode(doc["user_data"], "user_data") if doc.get("user_data") else b"",
            fields={k: v for k, v in doc.items() if k not in _RESERVED},
        )
    if ctype in RAW_TYPES:
        if not request.body:
            raise MALFORMED_REQUEST("empty evidence")
        user_data = request.header("attestation-user-data")
        return Envelope(
            evidence=request.body,
            nonce=request.header("attestation-nonce"),
            user_data=b64decode(user_data, "Attestation-User-Data") if user_data else b"",
        )
    raise UNSUPPORTED_MEDIA_TYPE(f"content type must be one of {', '.join(JSON_TYPES + RAW_TYPES)}")
