"""Typed view of a verified Google Cloud Attestation / Confidential Space token payload.

Claims per Google's "Attestation token claims" reference (Confidential Space and Confidential VM):
``hwmodel``, ``swname``, ``swversion``, ``dbgstat``, ``secboot``, ``oemid``, ``eat_nonce`` (string or list),
``eat_profile``, ``submods.{gce, confidential_space, container}``, ``google_service_accounts``. Missing
optional submodules are empty; present claims of the wrong type are UPSTREAM_TOKEN_CLAIMS_INVALID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker.evidence.jose.errors import UPSTREAM_TOKEN_CLAIMS_INVALID


def _str(payload: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = payload.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' must be a string")
    return value


def _str_list(payload: Mapping[str, Any], name: str, *, scalar_ok: bool = False) -> tuple[str, ...]:
    value = payload.get(name)
    if value is None:
        return ()
    if scalar_ok and isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' must be a list of strings")
    return tuple(value)


def _obj(payload: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = payload.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID(f"'{name}' must be an object")
    return value


@dataclass(frozen=True)
class GcpTokenClaims:
    hwmodel: str
    swname: str | None
    swversion: tuple[str, ...]
    dbgstat: str
    secboot: bool | None
    oemid: int | None
    eat_nonce: tuple[str, ...]
    eat_profile: str | None
    subject: str | None
    gce: Mapping[str, Any] = field(default_factory=dict)
    confidential_space: Mapping[str, Any] = field(default_factory=dict)
    container: Mapping[str, Any] = field(default_factory=dict)
    google_service_accounts: tuple[str, ...] = ()


def parse_claims(payload: Mapping[str, Any]) -> GcpTokenClaims:
    hwmodel = _str(payload, "hwmodel", required=True)
    dbgstat = _str(payload, "dbgstat", required=True)
    assert hwmodel is not None and dbgstat is not None
    secboot = payload.get("secboot")
    if secboot is not None and not isinstance(secboot, bool):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID("'secboot' must be a boolean")
    oemid = payload.get("oemid")
    if oemid is not None and (isinstance(oemid, bool) or not isinstance(oemid, int)):
        raise UPSTREAM_TOKEN_CLAIMS_INVALID("'oemid' must be an integer")
    submods = _obj(payload, "submods")
    return GcpTokenClaims(
        hwmodel=hwmodel,
        swname=_str(payload, "swname"),
        swversion=_str_list(payload, "swversion", scalar_ok=True),
        dbgstat=dbgstat,
        secboot=secboot,
        oemid=oemid,
        eat_nonce=_str_list(payload, "eat_nonce", scalar_ok=True),
        eat_profile=_str(payload, "eat_profile"),
        subject=_str(payload, "sub"),
        gce=_obj(submods, "gce"),
        confidential_space=_obj(submods, "confidential_space"),
        container=_obj(submods, "container"),
        google_service_accounts=_str_list(payload, "google_service_accounts"),
    )
