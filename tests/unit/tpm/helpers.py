"""Test helpers for the TPM kind: decoders for the vector containers (test-only, minimal) and contexts.

- ``gce_attestation``: a ~30-line protobuf wire reader for go-tpm-tools ``attest.Attestation`` (field numbers
  from MANIFEST-vtpm-cloud.md), enough to get the AK TPMT_PUBLIC, the three quotes and the event log.
- ``azure_bincode``: trustee/kinvolk bincode quote (u64-LE length-prefixed signature, message, 24×32-byte PCRs).
- ``hcl_ak_jwk``: the HCLAkPub JWK from an Azure HCL report's runtime JSON (offset 1236, variable_data_size).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support.vectors import vector

# Quotes have no wall-clock time (TPM clock only); any fixed instant works. Pinned for determinism.
NOW = datetime(2024, 2, 1, tzinfo=UTC)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def pb_fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs of one message; length-delimited values stay bytes."""
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, value))
    return out


@dataclass(frozen=True)
class GceQuote:
    quote: bytes
    raw_sig: bytes
    bank: str
    pcrs: dict[int, bytes]


@dataclass(frozen=True)
class GceAttestation:
    ak_pub: bytes
    quotes: tuple[GceQuote, ...]
    event_log: bytes
    ak_cert: bytes


_BANKS = {4: "sha1", 11: "sha256", 12: "sha384", 13: "sha512"}


def gce_attestation() -> GceAttestation:
    fields = pb_fields(vector("gcp/gce-cos-85-nonce9009.attestation.pb"))
    quotes = []
    for _, q in (f for f in fields if f[0] == 2):
        qf = dict(pb_fields(q))
        pcrs_msg = pb_fields(qf[3])
        bank = _BANKS[next(v for n, v in pcrs_msg if n == 1)]
        values: dict[int, bytes] = {}
        for n, entry in pcrs_msg:
            if n == 2:
                e = dict(pb_fields(entry))
                values[int(e.get(1, 0))] = e[2]
        quotes.append(GceQuote(qf[1], qf[2], bank, values))
    d = dict(fields)
    return GceAttestation(d[1], tuple(quotes), d[3], d[6])


@dataclass(frozen=True)
class BincodeQuote:
    signature: bytes
    message: bytes
    pcrs: dict[int, bytes]


def azure_bincode(data: bytes) -> BincodeQuote:
    pos = 0

    def u64() -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        return int(value)

    n = u64()
    sig = data[pos : pos + n]
    pos += n
    n = u64()
    msg = data[pos : pos + n]
    pos += n
    count = u64()
    pcrs = {i: data[pos + 32 * i : pos + 32 * i + 32] for i in range(count)}
    pos += 32 * count
    assert pos == len(data)
    return BincodeQuote(sig, msg, pcrs)


def hcl_ak_jwk(hcl: bytes) -> dict[str, Any]:
    (variable_size,) = struct.unpack_from("<I", hcl, 1216 + 16)
    runtime = json.loads(hcl[1236 : 1236 + variable_size])
    return next(k for k in runtime["keys"] if k["kid"] == "HCLAkPub")


def flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


def pin_rules(*pins: str, **rules: Any) -> dict[str, Any]:
    """Policy rules pinning the given AK SPKI digests (``ak_keys``), plus any other rules."""
    return {"ak_keys": [{"label": f"ak{i}", "sha256": pin} for i, pin in enumerate(pins)], **rules}
