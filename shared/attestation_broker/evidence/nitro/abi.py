"""Parse an AWS Nitro Enclaves attestation document: COSE_Sign1 envelope and CBOR payload.

Implements RFC 9052 §4.2 (COSE_Sign1, optionally wrapped in tag 18) and the AWS Nitro Enclaves
attestation document specification ("Verifying the root of trust", §"Attestation document
specification" and §"Syntactical validation"):

    AttestationDocument = {
        module_id: text .size (1..255), digest: "SHA384", timestamp: uint .size 8 (ms),
        pcrs: { + index (0..31) => bstr .size (32 / 48 / 64) },
        certificate: bstr .size (1..1024) (DER), cabundle: [ + bstr .size (1..1024) ] (DER, root first),
        ? public_key: bstr .size (1..1024) / nil, ? user_data: bstr .size (0..512) / nil,
        ? nonce: bstr .size (0..512) / nil,
    }

CBOR is decoded strictly: definite lengths only, no duplicate map keys, no tags (other than the
optional outer COSE tag 18), no trailing bytes after any item, and exact Python types (``bool`` is
not an integer here). The payload must carry exactly the keys above; unknown keys are refused.
Only parsing happens here: signatures and chains are checked in :mod:`.checks`.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NoReturn

import cbor2

from attestation_broker.errors import MALFORMED_EVIDENCE
from attestation_broker.evidence.common import load_der_certificate

from .errors import NITRO_ALG_UNSUPPORTED, NITRO_COSE_MALFORMED, NITRO_DOCUMENT_TOO_LARGE, NITRO_PAYLOAD_INVALID

# Real documents are 4.4–4.8 KB; the field limits above bound a legal one well below this.
MAX_DOCUMENT_BYTES = 16 * 1024
COSE_SIGN1_TAG = 18
COSE_HEADER_ALG = 1
ES384 = -35
ES384_SIGNATURE_BYTES = 96  # r ‖ s, 48 bytes each (RFC 9053 §2.1)

PCR_LENGTHS = frozenset({32, 48, 64})
MAX_PCR_INDEX = 31
_MAX_TIMESTAMP_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
_REQUIRED = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
_OPTIONAL_LIMITS = {"public_key": (1, 1024), "user_data": (0, 512), "nonce": (0, 512)}
_ALL_KEYS = frozenset(_REQUIRED) | frozenset(_OPTIONAL_LIMITS)
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class CoseSign1:
    """The four COSE_Sign1 members, with the protected header already checked to be ``{1: -35}``."""

    protected: bytes  # serialized protected header, signed as carried
    payload: bytes
    signature: bytes

    def sig_structure(self) -> bytes:
        """RFC 9052 §4.4 Sig_structure for COSE_Sign1 with empty external_aad."""
        return bytes(cbor2.dumps(["Signature1", self.protected, b"", self.payload]))


@dataclass(frozen=True)
class AttestationDocument:
    module_id: str
    digest: str
    timestamp_ms: int
    pcrs: Mapping[int, bytes]
    certificate: bytes
    cabundle: tuple[bytes, ...]
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True)
class ParsedDocument:
    cose: CoseSign1
    document: AttestationDocument


class _NoTags(Mapping[int, Any]):
    """A semantic-decoder table claiming every tag, so cbor2 never interprets one (datetimes, bignums, ...)."""

    def __getitem__(self, tag: int) -> Any:
        return _reject_tag

    def __contains__(self, tag: object) -> bool:
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _reject_tag(*_args: object) -> NoReturn:
    raise ValueError("CBOR tags are not allowed here")


_NO_TAGS = _NoTags()


def _strict_loads(data: bytes, what: str) -> object:
    fp = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(
            fp,
            tag_hook=_reject_tag,
            semantic_decoders=_NO_TAGS,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            max_depth=4,
        )
        value = decoder.decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError, EOFError):
        raise NITRO_COSE_MALFORMED(f"{what} is not strict definite-length CBOR") from None
    if fp.tell() != len(data):
        raise NITRO_COSE_MALFORMED(f"{what} has {len(data) - fp.tell()} trailing bytes")
    return value


def decode_evidence(evidence: bytes) -> bytes:
    """Raw COSE bytes pass through; anything else must be base64 (standard or URL-safe) of them."""
    if len(evidence) > 2 * MAX_DOCUMENT_BYTES:
        raise NITRO_DOCUMENT_TOO_LARGE(f"evidence is {len(evidence)} bytes")
    # 0x84: array(4); 0xd2: tag 18. Neither byte is a base64 character.
    if evidence[:1] in (b"\x84", b"\xd2"):
        raw = evidence
    else:
        try:
            text = b"".join(evidence.split())
            if b"-" in text or b"_" in text:
                text = text.translate(bytes.maketrans(b"-_", b"+/"))
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise MALFORMED_EVIDENCE("nitro evidence is neither COSE_Sign1 bytes nor base64") from None
    if not raw:
        raise NITRO_COSE_MALFORMED("empty document")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise NITRO_DOCUMENT_TOO_LARGE(f"document is {len(raw)} bytes, limit {MAX_DOCUMENT_BYTES}")
    return raw


def parse_cose_sign1(data: bytes) -> CoseSign1:
    body = data
    if data[:1] == b"\xd2":  # tag 18 (one-byte head): COSE_Sign1_Tagged
        body = data[1:]
    value = _strict_loads(body, "COSE_Sign1")
    if type(value) is not list or len(value) != 4:
        raise NITRO_COSE_MALFORMED("COSE_Sign1 must be an array of 4 members")
    protected, unprotected, payload, signature = value
    if type(protected) is not bytes or type(payload) is not bytes or type(signature) is not bytes:
        raise NITRO_COSE_MALFORMED("COSE_Sign1 protected, payload and signature must be byte strings")
    if type(unprotected) is not dict:
        raise NITRO_COSE_MALFORMED("COSE_Sign1 unprotected header must be a map")
    if unprotected:
        # Unprotected parameters are unauthenticated; the NSM sends none, so refuse rather than ignore.
        raise NITRO_COSE_MALFORMED("COSE_Sign1 unprotected header must be empty")
    header = _strict_loads(protected, "protected header") if protected else {}
    items = list(header.items()) if type(header) is dict else []
    # Exactly one parameter, alg = -35, with integer key and value (1.0 or True would compare equal).
    if len(items) != 1 or [(type(k), k, type(v), v) for k, v in items] != [(int, COSE_HEADER_ALG, int, ES384)]:
        raise NITRO_ALG_UNSUPPORTED("protected header must be exactly {alg: ES384}")
    if len(signature) != ES384_SIGNATURE_BYTES:
        raise NITRO_COSE_MALFORMED(f"ES384 signature must be {ES384_SIGNATURE_BYTES} bytes, got {len(signature)}")
    return CoseSign1(protected=protected, payload=payload, signature=signature)


def _bstr(value: object, name: str, low: int, high: int) -> bytes:
    if type(value) is not bytes or not low <= len(value) <= high:
        raise NITRO_PAYLOAD_INVALID(f"{name} must be a byte string of {low}..{high} bytes")
    return value


def _der_certificate(value: object, name: str) -> bytes:
    der = _bstr(value, name, 1, 1024)
    try:
        load_der_certificate(der)
    except ValueError:
        raise NITRO_PAYLOAD_INVALID(f"{name} is not a DER X.509 certificate") from None
    return der


def parse_payload(payload: bytes) -> AttestationDocument:
    value = _strict_loads(payload, "payload")
    if type(value) is not dict:
        raise NITRO_PAYLOAD_INVALID("payload must be a map")
    for key in value:
        if type(key) is not str or key not in _ALL_KEYS:
            raise NITRO_PAYLOAD_INVALID("payload has an unknown key")
    for key in _REQUIRED:
        if key not in value:
            raise NITRO_PAYLOAD_INVALID(f"payload lacks {key}")

    module_id = value["module_id"]
    if type(module_id) is not str or not 1 <= len(module_id.encode()) <= 255:
        raise NITRO_PAYLOAD_INVALID("module_id must be non-empty text")
    digest = value["digest"]
    if digest != "SHA384" or type(digest) is not str:
        raise NITRO_PAYLOAD_INVALID("digest must be SHA384")
    timestamp = value["timestamp"]
    if type(timestamp) is not int or not 0 < timestamp <= _UINT64_MAX:
        raise NITRO_PAYLOAD_INVALID("timestamp must be a positive uint64 (ms)")
    if timestamp > _MAX_TIMESTAMP_MS:
        # A uint64 of milliseconds reaches far beyond the years a datetime can hold (9999).
        raise NITRO_PAYLOAD_INVALID("timestamp is after the year 9999")

    raw_pcrs = value["pcrs"]
    if type(raw_pcrs) is not dict or not 1 <= len(raw_pcrs) <= MAX_PCR_INDEX + 1:
        raise NITRO_PAYLOAD_INVALID("pcrs must be a map of 1..32 entries")
    pcrs: dict[int, bytes] = {}
    for index, pcr in raw_pcrs.items():
        if type(index) is not int or not 0 <= index <= MAX_PCR_INDEX:
            raise NITRO_PAYLOAD_INVALID("pcr index must be an integer 0..31")
        if type(pcr) is not bytes or len(pcr) not in PCR_LENGTHS:
            raise NITRO_PAYLOAD_INVALID(f"pcr {index} must be 32, 48 or 64 bytes")
        pcrs[index] = pcr
    for index in (0, 1, 2):
        # PCR0..2 (image, kernel, application) are always present; PCR0 is the measurement.
        if index not in pcrs:
            raise NITRO_PAYLOAD_INVALID(f"pcr {index} is missing")

    certificate = _der_certificate(value["certificate"], "certificate")
    raw_bundle = value["cabundle"]
    if type(raw_bundle) is not list or not raw_bundle:
        raise NITRO_PAYLOAD_INVALID("cabundle must be a non-empty array")
    cabundle = tuple(_der_certificate(item, f"cabundle[{i}]") for i, item in enumerate(raw_bundle))

    optional: dict[str, bytes | None] = {}
    for key, (low, high) in _OPTIONAL_LIMITS.items():
        item = value.get(key)
        optional[key] = None if item is None else _bstr(item, key, low, high)

    return AttestationDocument(
        module_id=module_id,
        digest=digest,
        timestamp_ms=timestamp,
        pcrs=MappingProxyType(dict(sorted(pcrs.items()))),
        certificate=certificate,
        cabundle=cabundle,
        public_key=optional["public_key"],
        user_data=optional["user_data"],
        nonce=optional["nonce"],
    )


def parse_document(evidence: bytes) -> ParsedDocument:
    """Envelope (raw or base64) → COSE_Sign1 → payload, every rule above enforced; nothing verified yet."""
    cose = parse_cose_sign1(decode_evidence(evidence))
    return ParsedDocument(cose=cose, document=parse_payload(cose.payload))
