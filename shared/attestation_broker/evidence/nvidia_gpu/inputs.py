"""The input forms of the ``nvidia-gpu`` kind (docs/evidence.md, "NVIDIA GPUs"):

1. an nvtrust-style report: the SPDM transcript as hex text, with the device chain (PEM, leaf first)
   as an extra file or the ``certificate_chain`` envelope field;
2. the same transcript as raw binary;
3. NVIDIA attestation SDK evidence JSON, one or several devices: either the SDK's serialized list
   ``[{"arch", "certificate", "evidence", "nonce", ...}]`` or ``{"nonce", "arch", "evidence_list":
   [{"certificate", "evidence"}]}``; ``certificate`` is base64 of the PEM chain, ``evidence`` base64 of
   the binary transcript.

RIMs (SWID XML) may come as extra files; they are recognized by content and matched by identity.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker.verifier import Submission

from .errors import NVIDIA_EVIDENCE_MALFORMED
from .rim import looks_like_rim

MAX_DEVICES = 16
_HEX = frozenset(string.hexdigits)
_PEM = b"-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class DeviceEvidence:
    report: bytes
    chain_pem: bytes
    arch: str | None = None
    stated_nonce: str | None = None


@dataclass(frozen=True)
class Collected:
    devices: tuple[DeviceEvidence, ...]
    rims: tuple[bytes, ...]


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise NVIDIA_EVIDENCE_MALFORMED(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise NVIDIA_EVIDENCE_MALFORMED(f"{what} is not base64") from None


def _report_bytes(blob: bytes) -> bytes:
    text = blob.strip()
    if text and all(chr(c) in _HEX for c in text):
        if len(text) % 2:
            raise NVIDIA_EVIDENCE_MALFORMED("hex report has an odd number of digits")
        return bytes.fromhex(text.decode())
    return blob


def _entry(item: object, index: int, defaults: Mapping[str, Any]) -> DeviceEvidence:
    if not isinstance(item, dict):
        raise NVIDIA_EVIDENCE_MALFORMED(f"evidence_list[{index}] is not an object")
    chain = _b64(item.get("certificate"), f"evidence_list[{index}].certificate")
    if _PEM not in chain:
        raise NVIDIA_EVIDENCE_MALFORMED(f"evidence_list[{index}].certificate is not a PEM chain")
    arch = item.get("arch", defaults.get("arch"))
    nonce = item.get("nonce", defaults.get("nonce"))
    return DeviceEvidence(
        report=_b64(item.get("evidence"), f"evidence_list[{index}].evidence"),
        chain_pem=chain,
        arch=arch if isinstance(arch, str) else None,
        stated_nonce=nonce if isinstance(nonce, str) else None,
    )


def _from_json(blob: bytes) -> tuple[DeviceEvidence, ...]:
    try:
        doc = json.loads(blob)
    except (ValueError, UnicodeDecodeError):
        raise NVIDIA_EVIDENCE_MALFORMED("evidence JSON does not parse") from None
    defaults: Mapping[str, Any] = {}
    if isinstance(doc, dict):
        defaults = doc
        doc = doc.get("evidence_list")
    if not isinstance(doc, list) or not doc:
        raise NVIDIA_EVIDENCE_MALFORMED("evidence JSON holds no evidence list")
    if len(doc) > MAX_DEVICES:
        raise NVIDIA_EVIDENCE_MALFORMED(f"evidence list holds more than {MAX_DEVICES} devices")
    return tuple(_entry(item, i, defaults) for i, item in enumerate(doc))


def collect(submission: Submission) -> Collected:
    unknown = set(submission.fields) - {"certificate_chain"}
    if unknown:
        raise NVIDIA_EVIDENCE_MALFORMED(f"unknown envelope fields: {', '.join(sorted(unknown))}")
    rims: list[bytes] = []
    chains: list[bytes] = []
    for blob in submission.extras:
        if looks_like_rim(blob):
            rims.append(blob)
        elif _PEM in blob:
            chains.append(blob)
        else:
            raise NVIDIA_EVIDENCE_MALFORMED("an extra file is neither a PEM certificate chain nor a RIM")
    field_chain = submission.fields.get("certificate_chain")
    if field_chain is not None:
        if not isinstance(field_chain, str) or _PEM.decode() not in field_chain:
            raise NVIDIA_EVIDENCE_MALFORMED("certificate_chain must be a PEM string")
        chains.append(field_chain.encode())
    evidence = submission.evidence
    if evidence.lstrip()[:1] in (b"[", b"{"):
        if chains:
            raise NVIDIA_EVIDENCE_MALFORMED("an SDK evidence list carries its own certificate chains")
        return Collected(_from_json(evidence), tuple(rims))
    if len(chains) != 1:
        raise NVIDIA_EVIDENCE_MALFORMED("a single report needs exactly one PEM device certificate chain")
    return Collected((DeviceEvidence(_report_bytes(evidence), chains[0]),), tuple(rims))
