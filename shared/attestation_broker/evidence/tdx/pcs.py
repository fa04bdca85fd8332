"""Intel PCS signed JSON: TDX TCB info (v3) and TD_QE enclave identity (v2).

Implements Intel PCS API v4 "TCB Info V3" and "Enclave Identity V2" data models. The signature
(ECDSA P-256/SHA-256, raw r||s hex) covers the exact bytes of the inner ``tcbInfo`` /
``enclaveIdentity`` object as served, so the raw span is located in the body rather than re-serialized.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from attestation_broker.appraisal import TCB_STATUSES
from attestation_broker.errors import COLLATERAL_INVALID


@dataclass(frozen=True)
class SignedJson:
    signed: bytes  # exact bytes of the inner object
    signature: bytes  # raw r||s
    body: dict[str, Any]


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


def split_signed(body: bytes, key: str) -> SignedJson:
    """Locate ``key``'s raw value span in a PCS body ``{key: {...}, "signature": "<hex>"}``."""
    try:
        text = body.decode("utf-8")
        decoder = json.JSONDecoder()
        ws = " \t\r\n"
        pos = len(text) - len(text.lstrip(ws))
        if text[pos] != "{":
            raise ValueError("not an object")
        pos += 1
        spans: dict[str, tuple[int, int]] = {}
        values: dict[str, Any] = {}
        while True:
            while text[pos] in ws:
                pos += 1
            if text[pos] == "}":
                break
            name, pos = decoder.raw_decode(text, pos)
            while text[pos] in ws:
                pos += 1
            if text[pos] != ":" or not isinstance(name, str) or name in values:
                raise ValueError("bad member")
            pos += 1
            while text[pos] in ws:
                pos += 1
            start = pos
            values[name], pos = decoder.raw_decode(text, pos)
            spans[name] = (start, pos)
            while text[pos] in ws:
                pos += 1
            if text[pos] == ",":
                pos += 1
            elif text[pos] != "}":
                raise ValueError("bad separator")
        if text[pos + 1 :].strip(ws) or set(values) != {key, "signature"}:
            raise ValueError("unexpected members")
        inner = values[key]
        signature = bytes.fromhex(values["signature"])
        if not isinstance(inner, dict) or len(signature) != 64:
            raise ValueError("bad inner object or signature")
        start, end = spans[key]
        return SignedJson(text[start:end].encode("utf-8"), signature, inner)
    except (ValueError, IndexError, TypeError, UnicodeDecodeError):
        raise COLLATERAL_INVALID(f"PCS {key} body is malformed") from None


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
