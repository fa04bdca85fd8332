"""A tiny strict DER reader (X.690 §8, definite lengths only) for the GCE instance identity extension.

Only what that extension needs: tag/length/value splitting, INTEGER, BOOLEAN, UTF8String. Any
indefinite, non-minimal or overrunning length is rejected (the caller maps ``DerError`` to its code).
"""

from __future__ import annotations

from dataclasses import dataclass


class DerError(ValueError):
    pass


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes


def read_all(data: bytes) -> list[Tlv]:
    """Split ``data`` into consecutive TLVs; the whole input must be consumed."""
    out: list[Tlv] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise DerError("truncated header")
        tag = data[pos]
        if tag & 0x1F == 0x1F:
            raise DerError("high tag numbers are not used here")
        first = data[pos + 1]
        pos += 2
        if first < 0x80:
            length = first
        else:
            n = first & 0x7F
            if n == 0 or n > 4 or pos + n > len(data):
                raise DerError("bad length")
            length = int.from_bytes(data[pos : pos + n], "big")
            if length < 0x80 or data[pos] == 0:
                raise DerError("non-minimal length")
            pos += n
        if pos + length > len(data):
            raise DerError("value overruns input")
        out.append(Tlv(tag, data[pos : pos + length]))
        pos += length
    return out


def read_one(data: bytes) -> Tlv:
    items = read_all(data)
    if len(items) != 1:
        raise DerError("expected exactly one element")
    return items[0]


def integer(tlv: Tlv) -> int:
    if tlv.tag != 0x02 or not tlv.value:
        raise DerError("expected INTEGER")
    if len(tlv.value) > 1 and (
        (tlv.value[0] == 0 and tlv.value[1] < 0x80) or (tlv.value[0] == 0xFF and tlv.value[1] >= 0x80)
    ):
        raise DerError("non-minimal INTEGER")
    return int.from_bytes(tlv.value, "big", signed=True)


def boolean(tlv: Tlv) -> bool:
    if tlv.tag != 0x01 or len(tlv.value) != 1 or tlv.value[0] not in (0x00, 0xFF):
        raise DerError("expected DER BOOLEAN")
    return tlv.value[0] == 0xFF


def utf8(tlv: Tlv) -> str:
    if tlv.tag != 0x0C:
        raise DerError("expected UTF8String")
    try:
        return tlv.value.decode("utf-8")
    except UnicodeDecodeError:
        raise DerError("bad UTF-8") from None
