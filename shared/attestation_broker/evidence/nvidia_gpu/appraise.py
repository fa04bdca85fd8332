"""AR4SI trustworthiness vector of verified NVIDIA devices, and the kind's policy section.

Per device: a report signed by a key chaining to the NVIDIA Device Identity CA is genuine hardware with
a trusted identity (``hardware`` 2, ``instance-identity`` 2) whose memory is protected (``runtime-opaque``
2: attestation reports exist only in confidential-computing mode). ``executables`` grades the golden
comparison: 2 with zero mismatches against both RIMs, 33 when a RIM is unavailable, 96 on any mismatch.
Several devices: each claim takes its worst value.

Policy section (``{}``: ``nvidia-gpu/default``)::

    {"id": "...",
     "require_rims": false,             an unavailable RIM is contraindicated (default: a warning)
     "min_gpus": 8,                     at least this many distinct GPUs (NVSwitches not counted)
     "require_ppcie": true,             every GPU reports feature flag PPCIE (protected PCIe mode)
     "min_driver_version": "550.90.07", every GPU's driver at least this (numeric, dot-separated)
     "min_vbios_version": "96.00.9F.00.01"}  every device's VBIOS / switch BIOS at least this (hex fields)

The last four are requirements: a submission that does not meet them is refused with POLICY_REJECTED
(no token). docs/policy.md, "NVIDIA GPUs".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_INVALID, POLICY_REJECTED
from attestation_broker.evidence.common import content_policy_id, policy_bool, policy_section, require_policy_id

from .abi import FIELD_FEATURE_FLAG
from .pipeline import DeviceResult

PPCIE_FLAG = 2

DEFAULT_POLICY_ID = "nvidia-gpu/default"
_KEYS = frozenset({"id", "require_rims", "min_gpus", "require_ppcie", "min_driver_version", "min_vbios_version"})


@dataclass(frozen=True)
class GpuPolicy:
    policy_id: str = DEFAULT_POLICY_ID
    require_rims: bool = False
    min_gpus: int = 0
    require_ppcie: bool = False
    min_driver_version: tuple[int, ...] | None = None
    min_vbios_version: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, section: Mapping[str, Any]) -> GpuPolicy:
        if not section:
            return cls()
        section = policy_section("nvidia-gpu", section, _KEYS)
        require = policy_bool("nvidia-gpu", section, "require_rims")
        min_gpus = section.get("min_gpus", 0)
        if type(min_gpus) is not int or not 0 <= min_gpus <= 64:
            raise POLICY_INVALID("nvidia-gpu policy min_gpus must be an integer 0..64")
        driver = section.get("min_driver_version")
        vbios = section.get("min_vbios_version")
        explicit = section.get("id")
        policy_id = (
            content_policy_id("nvidia-gpu/sha256:", section)
            if explicit is None
            else require_policy_id("nvidia-gpu", explicit)
        )
        return cls(
            policy_id=policy_id,
            require_rims=require,
            min_gpus=min_gpus,
            require_ppcie=policy_bool("nvidia-gpu", section, "require_ppcie"),
            min_driver_version=None if driver is None else _policy_version(driver, 10, "min_driver_version"),
            min_vbios_version=None if vbios is None else _policy_version(vbios, 16, "min_vbios_version"),
        )


def version_key(text: str, base: int) -> tuple[int, ...] | None:
    """ "550.90.07" (base 10) or "96.00.9F.00.01" (base 16) as a comparable tuple; None when unparsable."""
    try:
        return tuple(int(part, base) for part in text.split("."))
    except ValueError:
        return None


def _policy_version(value: object, base: int, name: str) -> tuple[int, ...]:
    key = version_key(value, base) if isinstance(value, str) else None
    if key is None:
        raise POLICY_INVALID(f"nvidia-gpu policy {name} must be a dot-separated version string")
    return key


def enforce(devices: Sequence[DeviceResult], policy: GpuPolicy) -> None:
    """POLICY_REJECTED unless the device set meets the policy's requirements."""
    gpus = [d for d in devices if not d.switch]
    if len(gpus) < policy.min_gpus:
        raise POLICY_REJECTED(f"{len(gpus)} GPUs attested; the policy requires at least {policy.min_gpus}")
    for n, device in enumerate(devices):
        if device.switch:
            continue
        flag = device.report.opaque_value(FIELD_FEATURE_FLAG)
        if policy.require_ppcie and (not flag or flag[0] != PPCIE_FLAG):
            raise POLICY_REJECTED(f"device {n} is not in protected PCIe mode")
        if policy.min_driver_version is not None:
            have = version_key(device.driver_version or "", 10)
            if have is None or have < policy.min_driver_version:
                raise POLICY_REJECTED(f"device {n} driver {device.driver_version} is below the policy minimum")
    if policy.min_vbios_version is not None:
        for n, device in enumerate(devices):
            have = version_key(device.vbios_version or "", 16)
            if have is None or have < policy.min_vbios_version:
                raise POLICY_REJECTED(f"device {n} VBIOS {device.vbios_version} is below the policy minimum")


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
