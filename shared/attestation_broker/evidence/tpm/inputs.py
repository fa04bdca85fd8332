"""Gather the ``tpm`` kind's inputs from the submission: envelope fields and extra files recognized by content.

Envelope fields (base64 unless noted): ``quote`` (TPMS_ATTEST; otherwise the evidence bytes), ``signature``
(TPMT_SIGNATURE or bare RSA), ``ak_public`` (TPM2B_PUBLIC/TPMT_PUBLIC/DER SPKI; or PEM text; or a JWK object),
``pcrs`` (a JSON object ``{"sha256": {"0": "hex"}}``, or base64 of that JSON / of a tpm2-tools PCR file),
``event_log`` (TCG log). Any other envelope field is refused (INPUT_FIELD_UNKNOWN).

Extra files: JSON JWK or PCR object; PEM public key; TCG event log (``Spec ID Event03`` header, or a SHA-1
legacy log); tpm2-tools serialized PCR file; TPM2B_PUBLIC/TPMT_PUBLIC; DER SPKI; TPMT_SIGNATURE or bare RSA
signature. Each role may be supplied once; the shared collector (:data:`INPUTS`) refuses unknown fields,
unrecognized extras and a second candidate for one role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from attestation_broker import jsonlimits
from attestation_broker.errors import MALFORMED_EVIDENCE, BrokerError
from attestation_broker.inputs import InputSpec, Role, decode_base64
from attestation_broker.verifier import Submission

from .abi import looks_like_tpm_public, parse_signature
from .eventlog import parse_event_log
from .keys import AkPublic, load_ak_public
from .pcrfiles import PcrBanks, load_pcrs, looks_like_pcr_json, looks_like_tpm2tools_pcrs, pcrs_from_tpm2tools


@dataclass(frozen=True)
class TpmInputs:
    quote: bytes
    signature: bytes
    ak: AkPublic
    pcrs: PcrBanks | None
    event_log: bytes | None


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise MALFORMED_EVIDENCE(f"field {field} must be a non-empty base64 string")
    return decode_base64(value, f"field {field}", MALFORMED_EVIDENCE)


def _json_object(data: bytes) -> dict[str, Any] | None:
    """The JSON object ``data`` holds, or None when it is not JSON: binary parts may start with "{" too (a bare RSA
    signature is random bytes, one in 256 begins with 0x7B), and are then recognized by the checks that follow."""
    try:
        doc = jsonlimits.loads(data, MALFORMED_EVIDENCE, "extra JSON file")
    except BrokerError:
        return None
    return doc if isinstance(doc, dict) else None


def _classify(data: bytes) -> tuple[str, Any]:
    """Role and decoded value of one extra file, by content."""
    head = data.lstrip()[:16]
    doc = _json_object(data) if head.startswith(b"{") else None
    if doc is not None:
        if "kty" in doc:
            return "ak", load_ak_public(doc)
        if looks_like_pcr_json(doc):
            return "pcrs", load_pcrs(doc)
        raise MALFORMED_EVIDENCE("extra JSON file is neither a JWK nor PCR values")
    if head.startswith(b"-----BEGIN"):
        return "ak", load_ak_public(data)
    if len(data) >= 48 and data[32:47] == b"Spec ID Event03":
        return "event_log", data
    if looks_like_tpm2tools_pcrs(data):
        try:
            return "pcrs", pcrs_from_tpm2tools(data)
        except BrokerError:
            pass
    if looks_like_tpm_public(data) or data[:1] == b"\x30":
        try:
            return "ak", load_ak_public(data)
        except BrokerError:
            pass  # e.g. a bare signature whose first bytes happen to look like a key
    try:
        parse_signature(data)
        return "signature", data
    except BrokerError:
        pass
    try:
        parse_event_log(data)
        return "event_log", data
    except BrokerError:
        pass
    raise MALFORMED_EVIDENCE(f"extra file of {len(data)} bytes is not recognized for kind tpm")


@lru_cache(maxsize=64)
def _classified(data: bytes) -> tuple[str, Any]:
    return _classify(data)


def _is_role(role: str, data: bytes) -> bool:
    try:
        return _classified(bytes(data))[0] == role
    except BrokerError:
        return False


_ROLES = ("signature", "ak", "pcrs", "event_log")
INPUTS = InputSpec(
    "tpm",
    fields={"quote": "quote", "signature": "signature", "ak_public": "ak", "pcrs": "pcrs", "event_log": "event_log"},
    roles=tuple(Role(name, partial(_is_role, name)) for name in _ROLES),
)


def _put(found: dict[str, Any], role: str, value: Any) -> None:
    if role in found:
        raise MALFORMED_EVIDENCE(f"more than one {role} supplied")
    found[role] = value


def collect_inputs(submission: Submission) -> TpmInputs:
    """Decode fields and classify extras; raise MALFORMED_EVIDENCE when a required part is missing."""
    fields: Mapping[str, Any] = INPUTS.collect(submission.evidence, submission.extras, submission.fields).fields
    found: dict[str, Any] = {}
    quote = bytes(submission.evidence or b"")
    if "quote" in fields:
        from_field = _b64(fields["quote"], "quote")
        if quote and quote != from_field:
            raise MALFORMED_EVIDENCE("evidence and field quote differ")
        quote = from_field
    if not quote:
        raise MALFORMED_EVIDENCE("no TPM quote (TPMS_ATTEST) supplied")
    if "signature" in fields:
        _put(found, "signature", _b64(fields["signature"], "signature"))
    if "ak_public" in fields:
        ak_field = fields["ak_public"]
        if isinstance(ak_field, Mapping) or (isinstance(ak_field, str) and ak_field.lstrip().startswith("-----BEGIN")):
            _put(found, "ak", load_ak_public(ak_field))
        else:
            _put(found, "ak", load_ak_public(_b64(ak_field, "ak_public")))
    if "pcrs" in fields:
        pcr_field = fields["pcrs"]
        _put(found, "pcrs", load_pcrs(pcr_field if isinstance(pcr_field, Mapping) else _b64(pcr_field, "pcrs")))
    if "event_log" in fields:
        _put(found, "event_log", _b64(fields["event_log"], "event_log"))
    for extra in submission.extras:
        role, value = _classified(bytes(extra))
        _put(found, role, value)
    if "signature" not in found:
        raise MALFORMED_EVIDENCE("no quote signature supplied")
    if "ak" not in found:
        raise MALFORMED_EVIDENCE("no attestation key supplied")
    return TpmInputs(quote, found["signature"], found["ak"], found.get("pcrs"), found.get("event_log"))
