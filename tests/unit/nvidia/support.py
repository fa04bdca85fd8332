"""The NVIDIA vector sets (tests/vectors/nvidia, MANIFEST-nvidia.md) and a verify helper."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from attestation_broker.appraisal import Appraisal
from attestation_broker.config import Settings
from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier
from attestation_broker.trust.cache import CollateralCache
from attestation_broker.trust.fetch import Fetcher, OfflineFetcher
from attestation_broker.verifier import Submission, VerifyContext

from tests.support.vectors import vector

NV = "nvidia/"


@dataclass(frozen=True)
class GpuSet:
    name: str
    report: str
    chain: str
    rims: tuple[str, ...]
    now: datetime
    chip: str
    driver: str | None
    vbios: str
    nonce: str
    fwid: str
    complete: bool
    mismatches: tuple[int, ...] = ()
    extras: tuple[str, ...] = field(default=())

    def report_bytes(self) -> bytes:
        return vector(NV + self.report)

    def chain_bytes(self) -> bytes:
        return vector(NV + self.chain)

    def rim_bytes(self) -> tuple[bytes, ...]:
        return tuple(vector(NV + r) for r in self.rims)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


E1 = GpuSet(
    "E1-h100-545.00",
    "nvtrust/h100pcie_545.00_2023/attestationReport.txt",
    "nvtrust/h100pcie_545.00_2023/gpuAkCertChain.txt",
    (
        "nvtrust/h100pcie_545.00_2023/Driver_RIM_test_no_gpu.swidtag",
        "nvtrust/h100pcie_545.00_2023/1010_0200_882_96005E0001_test_no_gpu.swidtag",
    ),
    at("2025-01-15"),
    "GH100",
    "545.00",
    "96.00.5E.00.01",
    "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e",
    "absent-in-report",
    True,
)
E2 = GpuSet(
    "E2-h100-550.90.07",
    "nvtrust/h100pcie_550.90.07_2025/hopperAttestationReport.txt",
    "nvtrust/h100pcie_550.90.07_2025/hopperCertChain.txt",
    ("museop/NV_GPU_DRIVER_GH100_550.90.07.swidtag", "museop/NV_GPU_VBIOS_1010_0200_882_96009F0001.swidtag"),
    at("2026-03-01"),
    "GH100",
    "550.90.07",
    "96.00.9F.00.01",
    "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb",
    "match",
    True,
)
E7 = GpuSet(
    "E7-ls10-switch",
    "attestation-sdk/ls10_switch_96.10.55.00.01/switchAttestationReport.txt",
    "attestation-sdk/ls10_switch_96.10.55.00.01/switchCertChain.txt",
    ("attestation-sdk/ls10_switch_96.10.55.00.01/switchVBIOSRim_NV_SWITCH_BIOS_5612_0002_890_9610550001.xml",),
    at("2026-11-29"),
    "LS10",
    None,
    "96.10.55.00.01",
    "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb",
    "absent-in-report",
    True,
)
E6 = GpuSet(
    "E6-gb100-blackwell",
    "attestation-sdk/gb100_575.32/blackwellAttestationReport.txt",
    "attestation-sdk/gb100_575.32/blackwellCertChain.txt",
    (),
    at("2026-11-29"),
    "GB100",
    "575.32",
    "97.00.88.00.0F",
    "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb",
    "match",
    False,
)
E3 = GpuSet(
    "E3-h100-580.159.03-stale-vbios-rim",
    "attestation-sdk/h100pcie_580.159.03/hopperAttestationReport.txt",
    "attestation-sdk/h100pcie_580.159.03/hopperCertChain.txt",
    ("nvtrust/vbios_rims/1010_0205_862_9600740020_PROD.swidtag",),
    at("2025-01-15"),
    "GH100",
    "580.159.03",
    "96.00.74.00.20",
    "5bb22e377702d4e1e8215a903ba094826b9ac7f731dee1fe8102958bf2840aca",
    "match",
    False,
    mismatches=(9,),
)
E4 = GpuSet(
    "E4-h100-535.86.09-vbios-only",
    "attestation-sdk/h100pcie_535.86.09/hopperAttestationReport.txt",
    "attestation-sdk/h100pcie_535.86.09/hopperCertChain.txt",
    ("nvtrust/vbios_rims/1010_0200_882_96005E0001_PROD.swidtag",),
    at("2025-01-15"),
    "GH100",
    "535.86.09",
    "96.00.5E.00.01",
    "27a328247bf7935c993341cf587be6f05986ccce4fe7ba2c54100bd616a58f66",
    "absent-in-report",
    False,
)
SETS = (E1, E2, E7, E6, E3, E4)


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"revocation": "skip", "offline": True, "cache": "memory"}
    base.update(overrides)
    return Settings(**base)


def context(now: datetime, *, fetcher: Fetcher | None = None, **overrides: Any) -> VerifyContext:
    return VerifyContext(
        now=now, collateral=CollateralCache(fetcher or OfflineFetcher()), settings=settings(**overrides)
    )


def verify(
    evidence: bytes,
    extras: tuple[bytes, ...],
    now: datetime,
    *,
    fetcher: Fetcher | None = None,
    fields: dict[str, Any] | None = None,
    **overrides: Any,
) -> Appraisal:
    submission = Submission(evidence, extras, fields or {})
    return NvidiaGpuVerifier().verify(submission, context(now, fetcher=fetcher, **overrides))


def sdk_list(entries: list[tuple[bytes, bytes]], arch: str = "HOPPER") -> bytes:
    """The SDK's ``{"nonce", "arch", "evidence_list"}`` form of (report, chain PEM) pairs."""
    return json.dumps(
        {
            "arch": arch,
            "evidence_list": [
                {"certificate": base64.b64encode(chain).decode(), "evidence": base64.b64encode(report).decode()}
                for report, chain in entries
            ],
        }
    ).encode()
