"""AR4SI trustworthiness vector of verified NVIDIA devices, and the kind's policy section.

Per device: a report signed by a key chaining to the NVIDIA Device Identity CA is genuine hardware with
a trusted identity (``hardware`` 2, ``instance-identity`` 2) whose memory is protected (``runtime-opaque``
2: attestation reports exist only in confidential-computing mode). ``executables`` grades the golden
comparison: 2 with zero mismatches against both RIMs, 33 when a RIM is unavailable, 96 on any mismatch.
Several devices: each claim takes its worst value.

Facts only. GPU-count, PPCIe, RIM-required and minimum-version requirements are rules of the broker policy
engine over the claims this kind normalizes (``nvidia.gpus``, ``nvidia.devices[].feature_flag``,
``driver_version``, ``vbios_version``, ``measurements.status``; docs/policy.md "NVIDIA GPUs"); the kind
always grades with :data:`FACTS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from attestation_broker import appraisal as ar4si

from .pipeline import DeviceResult

DEFAULT_POLICY_ID = "nvidia-gpu"


@dataclass(frozen=True)
class GpuPolicy:
    policy_id: str = DEFAULT_POLICY_ID
    require_rims: bool = False


# Grading parameters the kind always uses: an unavailable RIM is "unrecognized" (33, a warning).
FACTS = GpuPolicy()


def comparison_status(device: DeviceResult) -> str:
    if device.comparison is not None and device.comparison.mismatches:
        return "mismatch"
    if not device.rims_complete:
        return "rims-unavailable"
    return "match"


@dataclass(frozen=True)
class Verdict:
    vector: Mapping[str, int]
    findings: tuple[str, ...]


def appraise(devices: Sequence[DeviceResult], policy: GpuPolicy) -> Verdict:
    findings: list[str] = []
    executables = ar4si.EXEC_APPROVED_RUNTIME
    for n, device in enumerate(devices):
        status = comparison_status(device)
        if status == "mismatch" and device.comparison is not None:
            findings.append(f"device {n}: RIM indices {list(device.comparison.mismatches)} do not match")
            executables = max(executables, ar4si.EXEC_CONTRAINDICATED)
        elif status == "rims-unavailable":
            missing = [lk.rim_id or f"{lk.role} RIM {lk.version}" for lk in device.rims if lk.rim is None]
            findings.append(f"device {n}: RIMs unavailable: {', '.join(missing)}")
            value = ar4si.EXEC_CONTRAINDICATED if policy.require_rims else ar4si.EXEC_UNRECOGNIZED
            executables = max(executables, value)
    vector = {
        "hardware": ar4si.HW_GENUINE,
        "instance-identity": ar4si.IDENTITY_TRUSTED,
        "runtime-opaque": ar4si.RUNTIME_ENCRYPTED,
        "executables": executables,
    }
    return Verdict(MappingProxyType(vector), tuple(findings))
