"""Composite CPU + GPU attestation (docs/evidence.md, "Composite CPU + GPU"): one ``POST /v1/attest/{cpu kind}``
carries the CPU TEE evidence and, in the envelope field ``gpus``, the NVIDIA GPU evidence::

    {"evidence": "<CPU evidence>", "extras": [...], "nonce": "<hex>", "user_data": "<base64>",
     "gpus": {"evidence": "<base64 of an nvidia-gpu submission>", "extras": ["<base64>", ...], ...}}

The ``gpus`` object is an ``nvidia-gpu`` envelope of its own: ``evidence`` and ``extras`` follow the broker's one
base64 rule (as the request's own), any other member is an ``nvidia-gpu`` envelope field (``certificate_chain``).
What it may carry is the ``nvidia-gpu`` kind's declaration for the shared input collector
(:mod:`attestation_broker.inputs`), exactly as for ``POST /v1/attest/nvidia-gpu``: an unknown field, an
unrecognized extra or a second device chain is refused with the collector's code.

Both halves are verified against the same broker binding (the CPU's own binding, and every GPU's SPDM
requester nonce = SHA-256(nonce ‖ user data)); any refusal refuses the whole request. The one token carries
the CPU kind's submod and one ``nvidia-gpu-<n>`` submod per device; its ``ear_status`` is the worst of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from attestation_broker.appraisal import Appraisal, EarStatus, worst
from attestation_broker.errors import MALFORMED_REQUEST
from attestation_broker.inputs import decode_base64
from attestation_broker.registry import Registry
from attestation_broker.verifier import Submission, VerifyContext

FIELD = "gpus"
CPU_KINDS = frozenset({"snp", "tdx", "azure-vtpm", "gcp-vtpm"})
GPU_KIND = "nvidia-gpu"
MAX_EXTRAS = 64


@dataclass(frozen=True)
class GpuPart:
    evidence: bytes
    extras: tuple[bytes, ...]
    fields: Mapping[str, Any] = field(default_factory=dict)


def _b64(value: object, what: str) -> bytes:
    return decode_base64(value, what, MALFORMED_REQUEST)  # as the request's own evidence and extras


def split(kind: str, fields: Mapping[str, Any]) -> tuple[Mapping[str, Any], GpuPart | None]:
    """(the CPU kind's own fields, the GPU part) of an envelope; the GPU part is None when absent."""
    if FIELD not in fields:
        return fields, None
    if kind not in CPU_KINDS:
        raise MALFORMED_REQUEST(f"'{FIELD}' goes with a CPU TEE kind ({', '.join(sorted(CPU_KINDS))})")
    raw = fields[FIELD]
    if not isinstance(raw, dict) or "evidence" not in raw:
        raise MALFORMED_REQUEST(f"'{FIELD}' must be {{'evidence': base64, 'extras': [base64, ...], ...}}")
    extras = raw.get("extras", [])
    if not isinstance(extras, list) or len(extras) > MAX_EXTRAS:
        raise MALFORMED_REQUEST(f"'{FIELD}.extras' must be a list of base64 strings")
    part = GpuPart(
        _b64(raw["evidence"], f"{FIELD}.evidence"),
        tuple(_b64(x, f"{FIELD}.extras[{i}]") for i, x in enumerate(extras)),
        {k: v for k, v in raw.items() if k not in ("evidence", "extras")},
    )
    return {k: v for k, v in fields.items() if k != FIELD}, part


def verify_gpus(registry: Registry, part: GpuPart, submission: Submission, ctx: VerifyContext) -> list[Appraisal]:
    """Per-device appraisals of the GPU part, bound to the same broker binding as the CPU evidence."""
    verifier = registry.require(GPU_KIND)
    gpu_submission = Submission(part.evidence, part.extras, part.fields, submission.binding)
    verify_each = getattr(verifier, "verify_each", None)
    if verify_each is None:
        return [verifier.verify(gpu_submission, ctx)]
    appraisals: list[Appraisal] = verify_each(gpu_submission, ctx)
    return appraisals


def merge(claims: dict[str, Any], device_claims: list[dict[str, Any]]) -> dict[str, Any]:
    """Add each device token's submod to the CPU token's claims as ``nvidia-gpu-<n>``; worst status wins."""
    statuses = [EarStatus(claims["ear_status"])]
    for n, extra in enumerate(device_claims):
        submod = extra["submods"][GPU_KIND]
        claims["submods"][f"{GPU_KIND}-{n}"] = submod
        statuses.append(EarStatus(submod["ear_status"]))
    claims["ear_status"] = worst(statuses).value
    return claims


def annotate(devices: list[Appraisal]) -> list[Appraisal]:
    """Record in each device's verifier claims how many GPUs and switches the whole submission attested, so a
    policy can require a device count of a composite (``verifier.composite.gpus >= 8``, docs/policy.md) while
    every device keeps its own submod."""

    def count(key: str) -> int:
        total = 0
        for device in devices:
            nvidia = device.attester_claims.get("nvidia")
            value = nvidia.get(key) if isinstance(nvidia, Mapping) else None
            total += value if isinstance(value, int) else 0
        return total

    summary = {"gpus": count("gpus"), "switches": count("switches")}
    return [replace(d, verifier_claims={**d.verifier_claims, "composite": summary}) for d in devices]
