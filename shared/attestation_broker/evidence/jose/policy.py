"""Helpers for the token kinds' policy sections: unknown keys and wrong types are POLICY_INVALID.

The policy id is the section's ``id`` when given, ``<kind>/default`` for an empty section, and otherwise
``<kind>/sha256:<first 16 hex of the canonical JSON>`` so two different unnamed policies never share an id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from attestation_broker.errors import POLICY_INVALID


def reject_unknown(kind: str, section: Mapping[str, Any], known: Collection[str]) -> None:
    unknown = sorted(set(section) - set(known) - {"id"})
    if unknown:
        raise POLICY_INVALID(f"{kind} policy has unknown keys: {', '.join(unknown)[:200]}")


def policy_id(kind: str, section: Mapping[str, Any]) -> str:
    given = section.get("id")
    if given is not None:
        if not isinstance(given, str) or not given:
            raise POLICY_INVALID(f"{kind} policy 'id' must be a non-empty string")
        return given
    if not section:
        return f"{kind}/default"
    canonical = json.dumps(section, sort_keys=True, separators=(",", ":")).encode()
    return f"{kind}/sha256:{hashlib.sha256(canonical).hexdigest()[:16]}"


def get_bool(kind: str, section: Mapping[str, Any], name: str, default: bool) -> bool:
    value = section.get(name, default)
    if not isinstance(value, bool):
        raise POLICY_INVALID(f"{kind} policy '{name}' must be a boolean")
    return value


def get_str_list(kind: str, section: Mapping[str, Any], name: str, *, lower: bool = False) -> tuple[str, ...]:
    value = section.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise POLICY_INVALID(f"{kind} policy '{name}' must be a list of non-empty strings")
    return tuple(v.lower() for v in value) if lower else tuple(value)
