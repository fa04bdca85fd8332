"""Supplied PCR values: the broker's JSON form and tpm2-tools' serialized PCR file.

- JSON ``{"sha256": {"0": "<hex>", ...}, "sha1": {...}}`` (bank → PCR index → lowercase/uppercase hex);
- tpm2-tools ``tpm2_quote -o FILE`` / ``tpm2_pcrread -o FILE`` default ``-F serialized`` output: the C structs
  TPML_PCR_SELECTION (u32 count + 16 × {u16 hash, u8 sizeofSelect, u8 pcrSelect[4]} padded to 8 bytes),
  a u32 count of TPML_DIGEST, then each TPML_DIGEST (u32 count + 8 × TPM2B_DIGEST {u16 size, u8 buf[64]}),
  host (little-endian) byte order. Values appear bank by bank, ascending PCR index, 8 per TPML_DIGEST.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from attestation_broker import jsonlimits

from .abi import DIGEST_SIZES, HASH_IDS, HASH_NAMES
from .digest import bank_alg
from .errors import TPM_PCRS_MALFORMED

PcrBanks = dict[str, dict[int, bytes]]

_SEL_SIZE = 8
_SEL_COUNT = 16
_SELECTION_BYTES = 4 + _SEL_COUNT * _SEL_SIZE
_TPM2B_DIGEST = 2 + 64
_TPML_DIGEST = 4 + 8 * _TPM2B_DIGEST


def pcrs_from_json(doc: Any) -> PcrBanks:
    """``{"bank": {"index": "hex"}}`` → {bank: {index: bytes}}; sizes are checked against the bank."""
    if not isinstance(doc, Mapping) or not doc:
        raise TPM_PCRS_MALFORMED("PCR values must be an object of banks")
    out: PcrBanks = {}
    for bank, values in doc.items():
        alg = bank_alg(str(bank))
        name = HASH_NAMES[alg]
        if not isinstance(values, Mapping):
            raise TPM_PCRS_MALFORMED(f"PCR bank {name} must map indices to hex")
        bank_out: dict[int, bytes] = {}
        for key, value in values.items():
            try:
                index = int(key)
                raw = bytes.fromhex(value) if isinstance(value, str) else None
            except ValueError as exc:
                raise TPM_PCRS_MALFORMED(f"PCR {name}:{str(key)[:4]} is not index → hex") from exc
            if raw is None or not 0 <= index <= 23 or len(raw) != DIGEST_SIZES[alg]:
                raise TPM_PCRS_MALFORMED(f"PCR {name}:{str(key)[:4]} has a bad index or size")
            bank_out[index] = raw
        out[name] = bank_out
    return out


def looks_like_pcr_json(doc: Any) -> bool:
    if not isinstance(doc, Mapping) or not doc:
        return False
    return all(str(k).lower().replace("-", "") in HASH_IDS and isinstance(v, Mapping) for k, v in doc.items())


def looks_like_tpm2tools_pcrs(data: bytes) -> bool:
    if len(data) < _SELECTION_BYTES + 4 or (len(data) - _SELECTION_BYTES - 4) % _TPML_DIGEST:
        return False
    count = int(struct.unpack_from("<I", data, 0)[0])
    digests = int(struct.unpack_from("<I", data, _SELECTION_BYTES)[0])
    return 1 <= count <= _SEL_COUNT and digests == (len(data) - _SELECTION_BYTES - 4) // _TPML_DIGEST


def pcrs_from_tpm2tools(data: bytes) -> PcrBanks:
    """Parse a tpm2-tools serialized PCR file (see module docstring)."""
    if not looks_like_tpm2tools_pcrs(data):
        raise TPM_PCRS_MALFORMED("not a tpm2-tools serialized PCR file")
    count = struct.unpack_from("<I", data, 0)[0]
    wanted: list[tuple[str, int, int]] = []  # (bank, index, size) in file order
    for n in range(count):
        off = 4 + n * _SEL_SIZE
        alg, size_of_select = struct.unpack_from("<HB", data, off)
        if alg not in DIGEST_SIZES or size_of_select > 4:
            raise TPM_PCRS_MALFORMED("tpm2-tools PCR file has a bad selection")
        bitmap = data[off + 3 : off + 3 + size_of_select]
        for i in range(size_of_select * 8):
            if bitmap[i // 8] & (1 << (i % 8)):
                wanted.append((HASH_NAMES[alg], i, DIGEST_SIZES[alg]))
    lists = struct.unpack_from("<I", data, _SELECTION_BYTES)[0]
    values: list[bytes] = []
    for n in range(lists):
        base = _SELECTION_BYTES + 4 + n * _TPML_DIGEST
        inner = struct.unpack_from("<I", data, base)[0]
        if inner > 8:
            raise TPM_PCRS_MALFORMED("tpm2-tools PCR file has a bad digest list")
        for k in range(inner):
            at = base + 4 + k * _TPM2B_DIGEST
            size = struct.unpack_from("<H", data, at)[0]
            if size > 64:
                raise TPM_PCRS_MALFORMED("tpm2-tools PCR file has a bad digest size")
            values.append(data[at + 2 : at + 2 + size])
    if len(values) != len(wanted):
        raise TPM_PCRS_MALFORMED("tpm2-tools PCR file: selection and values disagree")
    out: PcrBanks = {}
    for (bank, index, size), value in zip(wanted, values, strict=True):
        if len(value) != size:
            raise TPM_PCRS_MALFORMED(f"tpm2-tools PCR file: {bank}:{index} has a bad size")
        out.setdefault(bank, {})[index] = value
    return out


def load_pcrs(value: bytes | str | Mapping[str, Any]) -> PcrBanks:
    """PCR values from a JSON object, JSON text/bytes, or a tpm2-tools serialized file."""
    if isinstance(value, Mapping):
        return pcrs_from_json(value)
    raw = value.encode() if isinstance(value, str) else bytes(value)
    if raw.lstrip().startswith(b"{"):
        return pcrs_from_json(jsonlimits.loads(raw, TPM_PCRS_MALFORMED, "PCR JSON"))
    return pcrs_from_tpm2tools(raw)
