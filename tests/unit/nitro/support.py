"""Shared helpers for the Nitro tests: vector table (from MANIFEST-vtpm-cloud.md), contexts, COSE surgery."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
from attestation_broker.appraisal import Appraisal
from attestation_broker.binding import ExpectedBinding
from attestation_broker.evidence.nitro.kind import NitroVerifier
from attestation_broker.verifier import Submission

from tests.support.context import offline_context
from tests.support.vectors import vector


@dataclass(frozen=True)
class NitroVector:
    name: str
    timestamp: str  # UTC, from the manifest table: the pinned "now"
    module_id: str
    debug: bool
    public_key: bytes | None
    user_data_len: int | None
    nonce_len: int | None

    @property
    def now(self) -> datetime:
        return datetime.fromisoformat(self.timestamp).replace(tzinfo=UTC)

    @property
    def timestamp_ms(self) -> int:
        return round(self.now.timestamp() * 1000)

    def raw(self) -> bytes:
        """The document as COSE bytes (the .b64 vector decoded)."""
        data = vector(f"nitro/{self.name}")
        return base64.b64decode(data) if self.name.endswith(".b64") else data

    def evidence(self) -> bytes:
        """The file as stored: raw bytes, or base64 text for the .b64 vector."""
        return vector(f"nitro/{self.name}")


VECTORS = (
    NitroVector(
        "evervault-debug-2022-10-12.cose",
        "2022-10-12 13:50:06.081",
        "i-03ad7cdb817437eeb-enc0183cc7569b3f6e1",
        True,
        b"my super secret key",
        13,
        None,
    ),
    NitroVector(
        "evervault-nondebug-2022-10-13.cose",
        "2022-10-13 08:58:02.136",
        "i-020b6af9246d90e92-enc0183d09086c24190",
        False,
        None,
        None,
        256,
    ),
    NitroVector(
        "evervault-2022-11-16.san.cose",
        "2022-11-16 09:12:35.179",
        "i-025cfe04ec207e1bf-enc01847fb5d285b74b",
        True,
        None,
        120,
        256,
    ),
    NitroVector(
        "evervault-nondebug-2023-01-18.san.cose",
        "2023-01-18 13:07:19.280",
        "i-0ec0e572c8263d8ff-enc0185c4fd382eeb25",
        False,
        None,
        120,
        256,
    ),
    NitroVector(
        "evervault-2023-09-06a.cose",
        "2023-09-06 13:30:19.052",
        "i-047ca5b9027c7b5d2-enc018a610a51a1351c",
        True,
        None,
        33,
        256,
    ),
    NitroVector(
        "evervault-2023-09-07a.cose.b64",
        "2023-09-07 15:56:01.556",
        "i-0644948d93f19c17b-enc018a705a4fc6e067",
        True,
        None,
        91,
        256,
    ),
    NitroVector(
        "evervault-2023-09-07b.san.cose",
        "2023-09-07 13:08:40.642",
        "i-05380ca471c870cf2-enc018a6fc1afe4d77a",
        True,
        None,
        120,
        256,
    ),
)
BY_NAME = {v.name: v for v in VECTORS}
DEBUG = BY_NAME["evervault-debug-2022-10-12.cose"]
NONDEBUG = BY_NAME["evervault-nondebug-2022-10-13.cose"]
SAN_2023 = BY_NAME["evervault-nondebug-2023-01-18.san.cose"]
# Expected PCRs of the 2023-01-18 document, as given in full in the manifest.
SAN_2023_PCRS = {
    "0": "d265a83faa7b4fa0d73b82b6d06253e894445922937d0ee5a74fe4891da9817611a71e71b98e5329232902de3cf419af",
    "1": "bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b7607236edf26fcb78654e63f",
    "2": "e4f634d24ad83b7f6e49fe283bafdb220f6252fb4a278a858e19d15b7cd0f263b9168ed0bacefb4444266df9f9a77f24",
    "8": "97c5395a83c0d6a04d53ff962663c714c178c24500bf97f78456ed3721d922cf3f940614da4bb90107c439bc4a1443ca",
}


def run(
    evidence: bytes,
    now: datetime,
    *,
    binding: ExpectedBinding | None = None,
    verifier: NitroVerifier | None = None,
    **settings: Any,
) -> Appraisal:
    return (verifier or NitroVerifier()).verify(
        Submission(evidence=evidence, binding=binding), offline_context(now, **settings)
    )


def split(raw: bytes) -> tuple[bytes, dict[Any, Any], bytes, bytes]:
    protected, unprotected, payload, signature = cbor2.loads(raw)
    return protected, unprotected, payload, signature


def rebuild(raw: bytes, **changes: Any) -> bytes:
    """Re-encode a document with some COSE members replaced (signature left as is unless given)."""
    protected, unprotected, payload, signature = split(raw)
    members = {"protected": protected, "unprotected": unprotected, "payload": payload, "signature": signature}
    members.update(changes)
    return bytes(cbor2.dumps([members["protected"], members["unprotected"], members["payload"], members["signature"]]))


def with_payload(raw: bytes, **fields: Any) -> bytes:
    """Re-encode the payload map with fields replaced (a value of ``...`` deletes the field)."""
    body = cbor2.loads(split(raw)[2])
    for key, value in fields.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return rebuild(raw, payload=bytes(cbor2.dumps(body)))


def payload_of(raw: bytes) -> dict[str, Any]:
    body: dict[str, Any] = cbor2.loads(split(raw)[2])
    return body


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]
