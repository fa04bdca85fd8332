"""Intel PCS signed JSON: TDX TCB info (v3) and TD_QE enclave identity (v2).

Implements Intel PCS API v4 "TCB Info V3" and "Enclave Identity V2" data models. The signature
(ECDSA P-256/SHA-256, raw r||s hex) covers the exact bytes of the inner ``tcbInfo`` /
``enclaveIdentity`` object as served, so the raw span is located in the body rather than re-serialized.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from attestation_broker.appraisal import TCB_STATUSES
from attestation_broker.errors import COLLATERAL_INVALID
from attestation_broker.evidence.common import LruMemo
from attestation_broker.jsonlimits import unique_members


@dataclass(frozen=True)
class SignedJson:
    """An Intel-signed JSON object carried as a pair from intake on: the exact signed bytes and the signature.

    ``body`` is the decoded inner object (strict JSON: no duplicate member names at any depth, no NaN).
    Built once, either by :func:`split_signed` from a PCS/PCCS response body or by :func:`signed_pair`
    from a pair that already travels separately (dcap-qvl ``QuoteCollateralV3``, bundles).
    """

    signed: bytes  # exact bytes of the inner object, as Intel signed them
    signature: bytes  # raw r||s (64 bytes)
    body: dict[str, Any] = field(compare=False, hash=False, repr=False)

    def signature_hex(self) -> str:
        return self.signature.hex()


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def strict_json(text: str) -> Any:
    """RFC 8259 JSON with duplicate names and NaN/Infinity refused; trailing data is refused by json.loads."""
    # Intel signs bytes: duplicates would let two parsers see different collateral (jsonlimits.unique_members).
    return json.loads(text, object_pairs_hook=unique_members, parse_constant=_no_constants)


def _signature(value: Any) -> bytes:
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str) and all(c in "0123456789abcdefABCDEF" for c in value):
        raw = bytes.fromhex(value)
    else:
        raise ValueError("signature is not hex")
    if len(raw) != 64:
        raise ValueError("signature is not 64 bytes")
    return raw


def signed_pair(signed: bytes | str, signature: bytes | str, key: str) -> SignedJson:
    """A (signed JSON text, signature) pair as dcap-qvl carries it; the text must be one strict JSON object."""
    try:
        raw = signed.encode("utf-8") if isinstance(signed, str) else bytes(signed)
        inner = strict_json(raw.decode("utf-8"))
        if not isinstance(inner, dict):
            raise ValueError("not an object")
        return SignedJson(raw, _signature(signature), inner)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise COLLATERAL_INVALID(f"{key} (signed JSON and signature) is malformed") from None


_WS = " \t\r\n"


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


# Cached PCS bodies are the same bytes on every request: split each one once (failures are not memoized).
_SPLITS = LruMemo(256)


def split_signed(body: bytes, key: str) -> SignedJson:
    """Split a PCS body once (memoized by its exact bytes); see :func:`_split_signed`."""
    return _SPLITS.get((key, body), lambda: _split_signed(body, key))


def _split_signed(body: bytes, key: str) -> SignedJson:
    """Split a PCS body ``{key: {...}, "signature": "<hex>"}`` once, at intake, into a :class:`SignedJson`.

    The whole document is first decoded strictly (duplicates anywhere, trailing data, NaN refused) and
    must have exactly the members ``key`` and ``signature``. The span of ``key``'s value is then located
    with the standard decoder's ``raw_decode`` (which returns where each value ends, so strings
    containing braces or quotes are handled by the library, not here). No Python JSON library reports
    the raw source span of a member, which is why this small walk over the two top-level members exists.
    """
    try:
        text = body.decode("utf-8")
        doc = strict_json(text)
        if not isinstance(doc, dict) or set(doc) != {key, "signature"} or not isinstance(doc[key], dict):
            raise ValueError("unexpected members")
        decoder = json.JSONDecoder()
        pos = _skip(text, 0) + 1  # past "{" (strict_json proved the document is one object)
        for _ in range(2):
            name, pos = decoder.raw_decode(text, _skip(text, pos))
            pos = _skip(text, pos) + 1  # past ":"
            start = _skip(text, pos)
            _value, pos = decoder.raw_decode(text, start)
            if name == key:
                return SignedJson(text[start:pos].encode("utf-8"), _signature(doc["signature"]), doc[key])
            pos = _skip(text, pos) + 1  # past ","
        raise ValueError("member not found")
    except (ValueError, IndexError, TypeError, UnicodeDecodeError):
        raise COLLATERAL_INVALID(f"PCS {key} body is malformed") from None


@dataclass(frozen=True)
class TcbLevel:
    sgx: tuple[int, ...]
    pce_svn: int
    tdx: tuple[int, ...]
    status: str
    date: datetime
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True)
class IsvLevel:
    isv_svn: int
    status: str
    date: datetime
    advisory_ids: tuple[str, ...]


@dataclass(frozen=True)
class ModuleIdentity:
    id: str
    mrsigner: bytes
    attributes: bytes
    attributes_mask: bytes
    levels: tuple[IsvLevel, ...]


@dataclass(frozen=True)
class TcbInfo:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    fmspc: bytes
    pce_id: bytes
    eval_number: int
    tdx_module: ModuleIdentity | None
    module_identities: tuple[ModuleIdentity, ...]
    levels: tuple[TcbLevel, ...]


@dataclass(frozen=True)
class QeIdentity:
    id: str
    version: int
    issue_date: datetime
    next_update: datetime
    eval_number: int
    miscselect: int
    miscselect_mask: int
    attributes: bytes
    attributes_mask: bytes
    mrsigner: bytes
    isv_prod_id: int
    levels: tuple[IsvLevel, ...]


def _date(value: Any) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise ValueError("date")
    return datetime.fromisoformat(value[:-1] + "+00:00")


def _hex(value: Any, size: int) -> bytes:
    raw = bytes.fromhex(value)
    if len(raw) != size:
        raise ValueError("size")
    return raw


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("int")
    return value


def _status(value: Any) -> str:
    if value not in TCB_STATUSES:
        raise ValueError("status")
    return str(value)


def _advisories(level: dict[str, Any]) -> tuple[str, ...]:
    ids = level.get("advisoryIDs", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("advisoryIDs")
    return tuple(ids)


def _isv_levels(levels: Any) -> tuple[IsvLevel, ...]:
    return tuple(
        IsvLevel(_int(lv["tcb"]["isvsvn"]), _status(lv["tcbStatus"]), _date(lv["tcbDate"]), _advisories(lv))
        for lv in levels
    )


def _components(items: Any) -> tuple[int, ...]:
    if not isinstance(items, list) or len(items) != 16:
        raise ValueError("components")
    return tuple(_int(c["svn"]) for c in items)


def _module(m: dict[str, Any], size: int = 8) -> ModuleIdentity:
    return ModuleIdentity(
        id=str(m.get("id", "")),
        mrsigner=_hex(m["mrsigner"], 48),
        attributes=_hex(m["attributes"], size),
        attributes_mask=_hex(m["attributesMask"], size),
        levels=_isv_levels(m.get("tcbLevels", [])),
    )


def parse_tcb_info(body: dict[str, Any]) -> TcbInfo:
    """Decode a TCB info object (SGX or TDX; the caller insists on TDX)."""
    try:
        tdx = body.get("id") == "TDX"
        levels = tuple(
            TcbLevel(
                sgx=_components(lv["tcb"]["sgxtcbcomponents"]),
                pce_svn=_int(lv["tcb"]["pcesvn"]),
                tdx=_components(lv["tcb"]["tdxtcbcomponents"]) if tdx else (),
                status=_status(lv["tcbStatus"]),
                date=_date(lv["tcbDate"]),
                advisory_ids=_advisories(lv),
            )
            for lv in body["tcbLevels"]
        )
        module = body.get("tdxModule")
        identities = body.get("tdxModuleIdentities", [])
        if not isinstance(identities, list):
            raise ValueError("tdxModuleIdentities")
        return TcbInfo(
            id=str(body["id"]),
            version=_int(body["version"]),
            issue_date=_date(body["issueDate"]),
            next_update=_date(body["nextUpdate"]),
            fmspc=_hex(body["fmspc"], 6),
            pce_id=_hex(body["pceId"], 2),
            eval_number=_int(body["tcbEvaluationDataNumber"]),
            tdx_module=_module(module) if isinstance(module, dict) else None,
            module_identities=tuple(_module(m) for m in identities),
            levels=levels,
        )
    except (ValueError, KeyError, TypeError):
        raise COLLATERAL_INVALID("TCB info is malformed") from None


def parse_qe_identity(body: dict[str, Any]) -> QeIdentity:
    try:
        return QeIdentity(
            id=str(body["id"]),
            version=_int(body["version"]),
            issue_date=_date(body["issueDate"]),
            next_update=_date(body["nextUpdate"]),
            eval_number=_int(body["tcbEvaluationDataNumber"]),
            miscselect=int.from_bytes(_hex(body["miscselect"], 4), "big"),
            miscselect_mask=int.from_bytes(_hex(body["miscselectMask"], 4), "big"),
            attributes=_hex(body["attributes"], 16),
            attributes_mask=_hex(body["attributesMask"], 16),
            mrsigner=_hex(body["mrsigner"], 32),
            isv_prod_id=_int(body["isvprodid"]),
            levels=_isv_levels(body["tcbLevels"]),
        )
    except (ValueError, KeyError, TypeError):
        raise COLLATERAL_INVALID("QE identity is malformed") from None
