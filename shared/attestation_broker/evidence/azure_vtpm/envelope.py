"""Azure vTPM evidence containers → one :class:`AzureEvidence` (MANIFEST-vtpm-cloud.md "Azure quote containers").

Accepted forms, recognized by content:

- evidence = a raw HCL report (``HCLA``…), with the TPM quote, TD quote and VCEK as extras or fields;
- evidence = trustee JSON: **v0** (no ``version``; byte strings as JSON int arrays; ``quote``/``tpm_quote``
  {message, signature, pcrs}; ``report``/``hcl_report``; ``vcek`` PEM; ``td_quote``) or **v1/v2**
  (``"version": 1|2``; message/signature/pcrs hex; ``hcl_report``/``td_quote``/``vcek`` (DER) base64url
  with or without ``=`` padding);
- envelope ``fields`` with the v1 keys (``hcl_report``, ``tpm_quote``, ``td_quote``, ``vcek``);
- extras: a raw TPMS_ATTEST (``.msg``), a bare 256-byte RSA signature (``.sig``), a Rust-bincode quote
  (u64-LE length + signature, u64-LE length + TPMS_ATTEST, u64-LE count + PCRs, each 32 bytes or
  u64-LE length + 32 bytes), a quote JSON {signature, message, pcrs} (hex), a TDX quote (v4 header),
  certificates (PEM/DER) and an HCL report.
Anything unrecognized is AZURE_VTPM_EVIDENCE_MALFORMED: the broker never guesses.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from attestation_broker import jsonlimits
from attestation_broker.errors import INPUT_ROLE_DUPLICATE, BrokerError
from attestation_broker.inputs import InputSpec, Role

from .errors import AZURE_VTPM_EVIDENCE_MALFORMED
from .hcl import looks_like_hcl

TPM_MAGIC = b"\xff\x54\x43\x47\x80\x18"  # TPM_GENERATED_VALUE + TPM_ST_ATTEST_QUOTE
TDX_V4_HEADER = b"\x04\x00\x02\x00\x81\x00\x00\x00"
MAX_PCRS = 24


@dataclass(frozen=True)
class TpmQuote:
    message: bytes  # TPMS_ATTEST
    signature: bytes  # bare RSA PKCS#1 v1.5 (or TPMT_SIGNATURE)
    pcrs: tuple[bytes, ...] | None  # SHA-256 bank values of PCR 0..n-1, when supplied


@dataclass(frozen=True)
class AzureEvidence:
    hcl_report: bytes
    quote: TpmQuote | None
    td_quote: bytes | None
    certs: tuple[bytes, ...] = field(default=())
    container: str = "hcl"  # "hcl" | "trustee-v0" | "trustee-v1" | "trustee-v2" | "fields"


def _bad(detail: str) -> Exception:
    return AZURE_VTPM_EVIDENCE_MALFORMED(detail)


def _int_array(value: Any, name: str) -> bytes:
    if not isinstance(value, list) or not all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        raise _bad(f"{name} is not a byte array")
    return bytes(value)


def _hex(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"{name} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _bad(f"{name} is not hex") from None


def _b64(value: Any, name: str) -> bytes:
    """base64url or standard base64, padding optional (trustee writes base64url with '=')."""
    if not isinstance(value, str):
        raise _bad(f"{name} is not a base64 string")
    text = value.strip().replace("-", "+").replace("_", "/")
    text += "=" * (-len(text.rstrip("=")) % 4) if "=" not in text else ""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{name} is not base64") from None


def _pcr_list(values: Any, decode: Any, name: str) -> tuple[bytes, ...]:
    if not isinstance(values, list) or not 0 < len(values) <= MAX_PCRS:
        raise _bad(f"{name} must list 1..24 PCR values")
    out = tuple(decode(v, f"{name}[{i}]") for i, v in enumerate(values))
    if any(len(v) != 32 for v in out):
        raise _bad(f"{name} values must be 32-byte SHA-256 digests")
    return out


def _quote_from_json(doc: Mapping[str, Any], decode: Any, name: str) -> TpmQuote:
    if not isinstance(doc, Mapping) or not {"message", "signature"} <= set(doc):
        raise _bad(f"{name} needs message and signature")
    pcrs = _pcr_list(doc["pcrs"], decode, f"{name}.pcrs") if doc.get("pcrs") is not None else None
    return TpmQuote(decode(doc["message"], f"{name}.message"), decode(doc["signature"], f"{name}.signature"), pcrs)


def _cert_text(value: Any, decode: Any, name: str) -> bytes:
    if isinstance(value, str) and "-----BEGIN" in value:
        return value.encode()
    return bytes(decode(value, name))


def parse_trustee_json(doc: Mapping[str, Any]) -> AzureEvidence:
    version = doc.get("version", 0)
    if version not in (0, 1, 2):
        raise _bad(f"trustee evidence version {version!r}")
    if version == 0:
        decode: Any = _int_array
        hcl_key = "report" if "report" in doc else "hcl_report"
        quote_key = "quote" if "quote" in doc else "tpm_quote"
        blob: Any = _int_array
    else:
        decode, hcl_key, quote_key, blob = _hex, "hcl_report", "tpm_quote", _b64
    if hcl_key not in doc:
        raise _bad("evidence JSON has no HCL report")
    hcl = blob(doc[hcl_key], hcl_key)
    quote = _quote_from_json(doc[quote_key], decode, quote_key) if quote_key in doc else None
    td_quote = blob(doc["td_quote"], "td_quote") if doc.get("td_quote") is not None else None
    certs = (_cert_text(doc["vcek"], blob, "vcek"),) if doc.get("vcek") else ()
    return AzureEvidence(hcl, quote, td_quote, certs, f"trustee-v{version}")


def parse_bincode_quote(data: bytes) -> TpmQuote:
    """Rust bincode of az-tpm ``Quote``: lengths drive the parse; the whole input must be consumed."""
    pos = 0

    def u64() -> int:
        nonlocal pos
        if pos + 8 > len(data):
            raise _bad("bincode quote is truncated")
        (value,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        return int(value)

    def take(n: int) -> bytes:
        nonlocal pos
        if n > len(data) - pos:
            raise _bad("bincode quote is truncated")
        pos += n
        return data[pos - n : pos]

    signature = take(u64())
    message = take(u64())
    count = u64()
    if not 0 < count <= MAX_PCRS:
        raise _bad("bincode quote PCR count")
    rest = len(data) - pos
    if rest == count * 32:
        pcrs = tuple(take(32) for _ in range(count))
    elif rest == count * 40:
        values = []
        for _ in range(count):
            if u64() != 32:
                raise _bad("bincode quote PCR length")
            values.append(take(32))
        pcrs = tuple(values)
    else:
        raise _bad("bincode quote PCR area has an unexpected size")
    if not message.startswith(TPM_MAGIC):
        raise _bad("bincode quote message is not a TPMS_ATTEST quote")
    return TpmQuote(message, signature, pcrs)


def _json_or_none(blob: bytes) -> Any:
    try:
        return jsonlimits.loads(blob, AZURE_VTPM_EVIDENCE_MALFORMED, "evidence JSON")
    except BrokerError as exc:
        if jsonlimits.depth(blob) > jsonlimits.MAX_DEPTH:
            raise exc from None  # JSON, but hostile: refuse rather than try other readings
        return None


def _looks_like_bincode(data: bytes) -> bool:
    if len(data) < 16:
        return False
    (sig_len,) = struct.unpack_from("<Q", data, 0)
    return bool(0 < sig_len <= 1024 and len(data) > 16 + sig_len and data[16 + sig_len : 22 + sig_len] == TPM_MAGIC)


def _json_role(blob: bytes) -> str | None:
    doc = _json_or_none(blob)
    if not isinstance(doc, Mapping):
        return None
    if {"message", "signature"} <= set(doc) and "hcl_report" not in doc and "report" not in doc:
        return "tpm_quote"
    return "hcl_report" if "hcl_report" in doc or "report" in doc else None


def _role_of(blob: bytes) -> str | None:
    """The role of one extra file, by content, in the order :func:`assemble` reads them."""
    stripped = blob.lstrip()
    if looks_like_hcl(blob):
        return "hcl_report"
    if blob.startswith(TPM_MAGIC):
        return "tpm_message"
    if blob.startswith(TDX_V4_HEADER):
        return "td_quote"
    if _looks_like_bincode(blob):
        return "tpm_quote"
    if stripped[:1] == b"{" and (json_role := _json_role(blob)) is not None:
        return json_role  # else: random bytes (a bare signature) may start with "{" too
    if b"-----BEGIN" in blob or (blob[:1] == b"\x30" and len(blob) not in (256, 384, 512)):
        return "certificates"
    if len(blob) in (256, 384, 512):
        return "tpm_signature"
    return None


def _is(role: str, blob: bytes) -> bool:
    return _role_of(blob) == role


# Evidence: an HCL report or a trustee JSON (which carries the HCL report); envelope fields use the
# trustee v0/v1 names. A second HCL report, quote or TD quote is refused, never used in place of the first.
INPUTS = InputSpec(
    "azure-vtpm",
    fields={
        "hcl_report": "hcl_report",
        "report": "hcl_report",
        "tpm_quote": "tpm_quote",
        "quote": "tpm_quote",
        "td_quote": "td_quote",
        "vcek": "certificates",
        "version": "version",
    },
    roles=tuple(
        Role(name, partial(_is, name), many=name == "certificates")
        for name in ("hcl_report", "tpm_message", "td_quote", "tpm_quote", "certificates", "tpm_signature")
    ),
    evidence_role="hcl_report",
)


def _once(current: Any, name: str) -> None:
    if current is not None:
        raise INPUT_ROLE_DUPLICATE(f"azure-vtpm evidence got a second {name}")


def assemble(evidence: bytes, extras: Sequence[bytes], fields: Mapping[str, Any]) -> AzureEvidence:
    """Collect the HCL report, TPM quote, TD quote and certificates from every place they may come from;
    a second candidate for any of them is refused (INPUT_ROLE_DUPLICATE), whatever place it comes from."""
    INPUTS.collect(evidence, extras, fields)
    hcl: bytes | None = None
    quote: TpmQuote | None = None
    td_quote: bytes | None = None
    certs: list[bytes] = []
    container = "hcl"
    msg: bytes | None = None
    sig: bytes | None = None

    def take_json(doc: Any) -> None:
        nonlocal hcl, quote, td_quote, container
        if not isinstance(doc, Mapping):
            raise _bad("JSON evidence is not an object")
        if {"message", "signature"} <= set(doc) and "hcl_report" not in doc and "report" not in doc:
            _once(quote, "TPM quote")
            quote = _quote_from_json(doc, _hex, "quote")
            return
        found = parse_trustee_json(doc)
        _once(hcl, "HCL report")
        hcl, container = found.hcl_report, found.container
        if found.quote is not None:
            _once(quote, "TPM quote")
            quote = found.quote
        if found.td_quote is not None:
            _once(td_quote, "TD quote")
            td_quote = found.td_quote
        certs.extend(found.certs)

    def take(blob: bytes, name: str) -> None:
        nonlocal hcl, quote, td_quote, msg, sig
        stripped = blob.lstrip()
        if looks_like_hcl(blob):
            _once(hcl, "HCL report")
            hcl = blob
        elif blob.startswith(TPM_MAGIC):
            _once(msg, "TPM quote message")
            msg = blob
        elif blob.startswith(TDX_V4_HEADER):
            _once(td_quote, "TD quote")
            td_quote = blob
        elif _looks_like_bincode(blob):
            _once(quote, "TPM quote")
            quote = parse_bincode_quote(blob)
        elif stripped[:1] == b"{" and (doc := _json_or_none(blob)) is not None:
            take_json(doc)
        elif b"-----BEGIN" in blob or (blob[:1] == b"\x30" and len(blob) not in (256, 384, 512)):
            certs.append(blob)
        elif len(blob) in (256, 384, 512):
            _once(sig, "TPM quote signature")
            sig = blob  # a bare RSA signature is random bytes: recognized by size, after everything else
        else:
            raise _bad(f"{name} is not a recognized Azure vTPM evidence part")

    if evidence or not fields:  # a pure JSON-envelope submission carries everything in fields
        take(evidence, "evidence")
    for i, extra in enumerate(extras):
        take(extra, f"extra {i}")
    if fields:
        take_json(dict(fields))
        container = "fields"
    if msg is not None or sig is not None:
        if msg is None or sig is None or quote is not None:
            raise _bad("a TPM quote needs exactly one message and one signature")
        quote = TpmQuote(msg, sig, None)
    if hcl is None:
        raise _bad("no HCL report supplied")
    return AzureEvidence(hcl, quote, td_quote, tuple(certs), container)
