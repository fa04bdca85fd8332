"""The input forms of the ``nvidia-gpu`` kind (docs/evidence.md, "NVIDIA GPUs"):

1. an nvtrust-style report: the SPDM transcript as hex text, with the device chain (PEM, leaf first)
   as an extra file or the ``certificate_chain`` envelope field;
2. the same transcript as raw binary;
3. NVIDIA attestation SDK evidence JSON, one or several devices: either the SDK's serialized list
   ``[{"arch", "certificate", "evidence", "nonce", ...}]`` or ``{"nonce", "arch", "evidence_list":
   [{"certificate", "evidence"}]}``; ``certificate`` is base64 of the PEM chain, ``evidence`` base64 of
   the binary transcript.

RIMs (SWID XML) may come as extra files; they are recognized by content and matched by identity.

What may travel where is declared once, in :data:`INPUTS`, for the shared input collector
(:mod:`attestation_broker.inputs`): the envelope field ``certificate_chain``; extras that are RIMs (any number)
or one PEM device chain. A report's chain comes once — as an extra or as the field, never both; an SDK
evidence list carries its own chains, so a chain beside it is a second candidate (INPUT_ROLE_DUPLICATE).
Unknown fields and unrecognized extras are the collector's codes; base64 inside the evidence JSON follows
the broker's one rule (:func:`attestation_broker.inputs.decode_base64`).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import jsonlimits
from attestation_broker.inputs import InputSpec, Role, decode_base64
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


def is_sdk_list(evidence: bytes) -> bool:
    """The SDK's evidence JSON (a list, or an object holding ``evidence_list``), as opposed to one report."""
    return evidence.lstrip()[:1] in (b"[", b"{")


def is_pem_chain(blob: bytes) -> bool:
    return _PEM in blob and not looks_like_rim(blob)


def _evidence_roles(evidence: bytes) -> tuple[str, ...]:
    return ("report", "certificate_chain") if is_sdk_list(evidence) else ("report",)


INPUTS = InputSpec(
    "nvidia-gpu",
    fields={"certificate_chain": "certificate_chain"},
    roles=(Role("rim", looks_like_rim, many=True), Role("certificate_chain", is_pem_chain)),
    evidence_role=_evidence_roles,
)


def _b64(value: object, what: str) -> bytes:
    return decode_base64(value, what, NVIDIA_EVIDENCE_MALFORMED)


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
    doc = jsonlimits.loads(blob, NVIDIA_EVIDENCE_MALFORMED, "the evidence JSON")
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
    """The devices and RIMs of a submission; the collector (:data:`INPUTS`) has refused anything ambiguous."""
    parts = INPUTS.collect(submission.evidence, submission.extras, submission.fields)
    rims = parts.all("rim")
    evidence = submission.evidence
    if is_sdk_list(evidence):
        return Collected(_from_json(evidence), rims)
    chain = parts.one("certificate_chain")
    field_chain = parts.fields.get("certificate_chain")
    if field_chain is not None:
        if not isinstance(field_chain, str) or _PEM.decode() not in field_chain:
            raise NVIDIA_EVIDENCE_MALFORMED("certificate_chain must be a PEM string")
        chain = field_chain.encode("utf-8", errors="replace")
    if chain is None:
        raise NVIDIA_EVIDENCE_MALFORMED("a single report needs its PEM device certificate chain")
    return Collected((DeviceEvidence(_report_bytes(evidence), chain),), rims)
