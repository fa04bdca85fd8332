"""Normalized claims of verified NVIDIA devices (token/schema.json ``tee: nvidia-cc``).

``nvidia.devices[]``: type (gpu | switch), chip, ueid (leaf serial in decimal, as NRAS reports it),
device_id (SHA-256 of the per-device BROM certificate), driver and VBIOS versions, FWID, feature flag
(SPT / MPT / PPCIE) and PPCIe status where reported, NVDEC0 status, requester nonce, the measurement
comparison (status match | mismatch | rims-unavailable, active count, mismatching RIM indices) and the
RIMs used (id, version, SHA-256, signer validity, where it came from).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .abi import FEATURE_FLAGS, FIELD_FEATURE_FLAG, FIELD_NVDEC0_STATUS, FIELD_PPCIE_STATUS
from .appraise import comparison_status
from .pipeline import DeviceResult
from .trust import fingerprint


def _byte(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def device_claims(device: DeviceResult) -> dict[str, Any]:
    report = device.report
    flag = report.opaque_value(FIELD_FEATURE_FLAG)
    identity = device.chain.certificates[1] if len(device.chain.certificates) > 1 else device.chain.leaf
    comparison: dict[str, Any] = {"status": comparison_status(device)}
    if device.comparison is not None:
        comparison.update(
            active=device.comparison.active,
            mismatches=list(device.comparison.mismatches),
            nvdec0_exempt=device.comparison.nvdec0_exempt,
        )
    return {
        "type": "switch" if device.switch else "gpu",
        "chip": device.chip,
        "ueid": str(device.chain.leaf.serial_number),
        "device_id": fingerprint(identity),
        "driver_version": device.driver_version,
        "vbios_version": device.vbios_version,
        "fwid": {"status": device.fwid.status, "oid": device.fwid.oid},
        "feature_flag": FEATURE_FLAGS.get(flag[0], flag.hex()) if flag else None,
        "ppcie_status": _byte(report.opaque_value(FIELD_PPCIE_STATUS)),
        "nvdec0_status": _byte(report.opaque_value(FIELD_NVDEC0_STATUS)),
        "nonce": report.requester_nonce.hex(),
        "measurements": comparison,
        "rims": [
            {
                "role": lookup.role,
                "id": lookup.rim_id,
                "version": lookup.version,
                "source": lookup.source,
                **(
                    {
                        "sha256": lookup.rim.sha256,
                        "signer_not_after": lookup.rim.signer_not_after.isoformat(),
                    }
                    if lookup.rim
                    else {"reason": lookup.reason}
                ),
            }
            for lookup in device.rims
        ],
    }


def attester_claims(devices: Sequence[DeviceResult]) -> dict[str, Any]:
    return {
        "tee": "nvidia-cc",
        "platform": "unknown",
        "nvidia": {
            "gpus": sum(1 for d in devices if not d.switch),
            "switches": sum(1 for d in devices if d.switch),
            "devices": [device_claims(d) for d in devices],
        },
    }


def verifier_claims(devices: Sequence[DeviceResult]) -> dict[str, Any]:
    collateral: list[dict[str, Any]] = []
    for device in devices:
        for result in device.revocation or ():
            collateral.append(result.record())
        for lookup in device.rims:
            if lookup.rim is not None:
                collateral.append(
                    {
                        "type": "nvidia_rim",
                        "id": lookup.rim_id,
                        "source": lookup.source,
                        "next_update": lookup.rim.signer_not_after.isoformat(),
                        "stale": False,
                    }
                )
    return {
        "evidence_kind": "nvidia-gpu",
        "collateral": collateral,
        "bindings": {"nonce": "checked" if devices and devices[0].nonce_checked else "not-requested"},
        "root": {
            "subject": devices[0].chain.root.subject.rfc4514_string(),
            "sha256": fingerprint(devices[0].chain.root),
        }
        if devices
        else {},
        "signing_key": "nvidia-device-identity",
        "revocation": "checked" if devices and devices[0].revocation is not None else "skipped",
        "trailing_bytes": [d.report.trailing for d in devices],
    }
