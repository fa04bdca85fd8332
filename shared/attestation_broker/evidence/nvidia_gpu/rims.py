"""Where the RIMs for a device come from, in order: RIM files supplied with the evidence (matched by
product and version), then NVIDIA's RIM service through the collateral cache.

RIM ids, as NVIDIA's RIM service names them (NVIDIA nvtrust local verifier, "RIM service"):

* driver RIM: ``NV_GPU_DRIVER_GH100_<driver version>`` (Hopper), ``NV_GPU_CC_DRIVER_GB100_<driver
  version>`` (Blackwell);
* VBIOS RIM: ``NV_GPU_VBIOS_<project>_<project SKU>_<chip SKU>_<VBIOS version without dots>``;
* NVSwitch BIOS RIM: ``NV_SWITCH_BIOS_<project>_<project SKU>_<chip SKU>_<BIOS version without dots>``.

``GET {nvidia_rim_url}/v1/rim/<id>`` answers ``{"id", "rim": "<base64 of the SWID XML>", ...}``. A fetched
RIM is verified before it is cached and again on every use; it is cached for a day because NVIDIA
re-issues RIMs under the same id (docs/evidence.md, "NVIDIA GPUs"). An unreachable or unknown RIM is not
a refusal: the comparison is reported as ``rims-unavailable`` and caps the result at warning.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from attestation_broker.errors import COLLATERAL_INVALID, BrokerError, Unavailable
from attestation_broker.verifier import VerifyContext

from .errors import NVIDIA_RIM_MISMATCH
from .rim import Rim, verify_rim

RIM_CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class RimLookup:
    role: str  # "driver" | "vbios"
    rim_id: str | None  # None: not derivable from the report (NVSwitch), only a supplied RIM can serve
    version: str
    rim: Rim | None
    source: str  # "extra" | "memory" | "store" | "origin" | "unavailable"
    reason: str | None = None


def driver_rim_id(chip: str, version: str) -> str:
    if chip.startswith("GB"):
        return f"NV_GPU_CC_DRIVER_GB100_{version}"
    return f"NV_GPU_DRIVER_{chip}_{version}"


def firmware_rim_id(*, switch: bool, project: str, project_sku: str, chip_sku: str, version: str) -> str:
    prefix = "NV_SWITCH_BIOS" if switch else "NV_GPU_VBIOS"
    return f"{prefix}_{project}_{project_sku}_{chip_sku}_{version.replace('.', '')}".upper()


def _rim_from_service(body: bytes) -> bytes:
    try:
        doc = json.loads(body)
        return base64.b64decode(doc["rim"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise COLLATERAL_INVALID("the RIM service answer is not {'rim': base64}") from None


def find_rim(
    ctx: VerifyContext,
    supplied: tuple[Rim, ...],
    root: x509.Certificate,
    *,
    role: str,
    rim_id: str | None,
    product: str,
    version: str,
) -> RimLookup:
    for rim in supplied:
        if rim.product == product and rim.version.lower() == version.lower():
            return RimLookup(role, rim_id, version, rim, "extra")
    if rim_id is None:
        return RimLookup(role, None, version, None, "unavailable", "RIM_ID_UNKNOWN")
    url = f"{ctx.settings.nvidia_rim_url.rstrip('/')}/v1/rim/{rim_id}"
    skew = timedelta(seconds=ctx.settings.clock_skew_seconds)

    def validate(body: bytes) -> None:
        verify_rim(_rim_from_service(body), root, now=ctx.now, skew=skew)

    def expires(_body: bytes) -> datetime:
        return ctx.now + timedelta(seconds=RIM_CACHE_SECONDS)

    try:
        obj = ctx.collateral.get(
            url,
            now=ctx.now,
            expires=expires,
            validate=validate,
            collateral_type="nvidia_rim",
        )
    except Unavailable as exc:
        return RimLookup(role, rim_id, version, None, "unavailable", exc.code.name)
    except BrokerError as exc:
        if exc.code.name != "COLLATERAL_NOT_FOUND":
            raise
        return RimLookup(role, rim_id, version, None, "unavailable", exc.code.name)
    rim = verify_rim(_rim_from_service(obj.body), root, now=ctx.now, skew=skew)
    if rim.product != product or rim.version.lower() != version.lower():
        raise NVIDIA_RIM_MISMATCH(f"RIM {rim_id} names {rim.product} {rim.version}")
    return RimLookup(role, rim_id, version, rim, obj.source)
