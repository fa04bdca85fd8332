"""Golden-measurement comparison, with the rules of NVIDIA's local GPU verifier (nvtrust
``verifier.py``, "Comparing measurements"):

* RIM index i is compared with SPDM measurement block i + 1; only ``active`` RIM entries count;
* a runtime value matches when it equals any of the entry's ``alternatives`` golden values;
* the driver RIM and the VBIOS RIM must not both declare the same index active (a conflict is an
  error, not a mismatch: the RIMs contradict each other);
* RIM index 35 is not compared when the report's NVDEC0 status is 0x55 (NVDEC0 disabled: that
  measurement register then holds no meaningful value); with any other status it counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .abi import FIELD_NVDEC0_STATUS, Report
from .errors import NVIDIA_MEASUREMENT_CONFLICT
from .rim import Golden

NVDEC0_INDEX = 35
NVDEC0_DISABLED = b"\x55"


@dataclass(frozen=True)
class Comparison:
    active: int
    mismatches: tuple[int, ...]  # RIM indices
    nvdec0_exempt: bool


def merge_golden(driver: Sequence[Golden], vbios: Sequence[Golden]) -> dict[int, Golden]:
    merged: dict[int, Golden] = {g.index: g for g in driver if g.active}
    for golden in vbios:
        if not golden.active:
            continue
        if golden.index in merged:
            raise NVIDIA_MEASUREMENT_CONFLICT(f"driver and VBIOS RIMs both declare index {golden.index} active")
        merged[golden.index] = golden
    return merged


def compare(report: Report, golden: dict[int, Golden]) -> Comparison:
    exempt = report.opaque_value(FIELD_NVDEC0_STATUS) == NVDEC0_DISABLED
    mismatches: list[int] = []
    active = 0
    for index in sorted(golden):
        if exempt and index == NVDEC0_INDEX:
            continue
        active += 1
        runtime = report.measurement(index + 1)
        if runtime is None or runtime not in golden[index].values:
            mismatches.append(index)
    return Comparison(active=active, mismatches=tuple(mismatches), nvdec0_exempt=exempt)
