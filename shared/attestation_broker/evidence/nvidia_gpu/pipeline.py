"""The ``nvidia-gpu`` pipeline for one device: parse → device chain → report signature → nonce binding
→ FWID → RIMs (supplied, or NVIDIA's RIM service) → OCSP for every device certificate and every RIM
signer certificate (unless revocation is skipped) → golden comparison. Each step is in its own module;
this one only orders them and gathers the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID

from attestation_broker.binding import require_equal
from attestation_broker.verifier import Submission, VerifyContext

from . import ocsp
from .abi import (
    FIELD_CHIP_SKU,
    FIELD_DRIVER_VERSION,
    FIELD_PROJECT,
    FIELD_PROJECT_SKU,
    FIELD_VBIOS_VERSION,
    Report,
    parse_report,
    text_field,
    vbios_version,
)
from .checks import DeviceChain, FwidResult, check_fwid, load_chain, verify_chain, verify_report_signature
from .compare import Comparison, compare, merge_golden
from .errors import NVIDIA_EVIDENCE_MALFORMED, NVIDIA_REPORT_MALFORMED
from .inputs import DeviceEvidence
from .rim import Rim
from .rims import RimLookup, driver_rim_id, find_rim, firmware_rim_id
from .trust import NvidiaRoots


@dataclass(frozen=True)
class DeviceResult:
    report: Report
    chain: DeviceChain
    switch: bool
    chip: str
    driver_version: str | None
    vbios_version: str | None
    fwid: FwidResult
    revocation: tuple[ocsp.OcspResult, ...] | None  # device then RIM signer certificates; None: skipped
    rims: tuple[RimLookup, ...]
    comparison: Comparison | None  # None: a RIM is unavailable and nothing mismatched
    nonce_checked: bool

    @property
    def rims_complete(self) -> bool:
        return all(lookup.rim is not None for lookup in self.rims)


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else ""


def device_kind(leaf: x509.Certificate) -> tuple[str, bool]:
    """(chip, is_switch) from the leaf CN: "GH100 A01 GSP FMC LF", "LS_10 A01 FSP FMC LF"."""
    first = _common_name(leaf).split(" ", 1)[0]
    chip = first.replace("_", "")
    if not chip:
        raise NVIDIA_EVIDENCE_MALFORMED("the device leaf certificate names no chip")
    return chip, first.startswith("LS_")


def _lookups(
    ctx: VerifyContext,
    report: Report,
    chip: str,
    switch: bool,
    driver: str | None,
    vbios: str | None,
    rims: tuple[Rim, ...],
    roots: NvidiaRoots,
) -> tuple[RimLookup, ...]:
    lookups: list[RimLookup] = []
    if not switch:
        if driver is None:
            raise NVIDIA_REPORT_MALFORMED("the GPU report's opaque data has no driver version")
        lookups.append(
            find_rim(
                ctx, rims, roots.rim, role="driver", rim_id=driver_rim_id(chip, driver), product=chip, version=driver
            )
        )
    if vbios is None:
        raise NVIDIA_REPORT_MALFORMED("the report's opaque data has no VBIOS version")
    # NVSwitch reports carry no project / SKU fields: their BIOS RIM id cannot be formed, so the RIM
    # must be supplied (or comes from a bundle).
    project, project_sku, chip_sku = (
        text_field(report.opaque_value(f)) for f in (FIELD_PROJECT, FIELD_PROJECT_SKU, FIELD_CHIP_SKU)
    )
    rim_id = None
    if project and project_sku and chip_sku:
        rim_id = firmware_rim_id(
            switch=switch, project=project, project_sku=project_sku, chip_sku=chip_sku, version=vbios
        )
    lookups.append(find_rim(ctx, rims, roots.rim, role="vbios", rim_id=rim_id, product=chip, version=vbios))
    return tuple(lookups)


def verify_device(
    device: DeviceEvidence,
    submission: Submission,
    ctx: VerifyContext,
    rims: tuple[Rim, ...],
    *,
    roots: NvidiaRoots,
    skip_revocation: bool,
) -> DeviceResult:
    skew = timedelta(seconds=ctx.settings.clock_skew_seconds)
    report = parse_report(device.report)
    chain = verify_chain(load_chain(device.chain_pem), roots.device, now=ctx.now, skew=skew, what="device")
    verify_report_signature(report, chain.leaf)
    if device.stated_nonce is not None and device.stated_nonce.lower() != report.requester_nonce.hex():
        raise NVIDIA_EVIDENCE_MALFORMED("the evidence list states another nonce than its report carries")
    if submission.binding is not None:
        require_equal("the SPDM requester nonce", report.requester_nonce, submission.binding.spdm_nonce())
    fwid = check_fwid(report, chain.leaf)
    chip, switch = device_kind(chain.leaf)
    driver = None if switch else text_field(report.opaque_value(FIELD_DRIVER_VERSION))
    vbios = vbios_version(report.opaque_value(FIELD_VBIOS_VERSION), switch=switch)
    lookups = _lookups(ctx, report, chip, switch, driver, vbios, rims, roots)
    revocation: tuple[ocsp.OcspResult, ...] | None = None
    if not skip_revocation:
        # The device chain, then the signer chain of every RIM this device uses (NVIDIA's local verifier checks
        # both); RIMs shared by several devices are answered from the collateral cache after the first.
        revocation = ocsp.check_chain(ctx, chain, role="device")
        for lookup in lookups:
            if lookup.rim is not None:
                revocation += ocsp.check_chain(ctx, lookup.rim.signer, role="rim-signer")
    driver_golden = next((lk.rim.measurements for lk in lookups if lk.role == "driver" and lk.rim), ())
    vbios_golden = next((lk.rim.measurements for lk in lookups if lk.role == "vbios" and lk.rim), ())
    comparison: Comparison | None = None
    if driver_golden or vbios_golden:
        comparison = compare(report, merge_golden(driver_golden, vbios_golden))
    return DeviceResult(
        report=report,
        chain=chain,
        switch=switch,
        chip=chip,
        driver_version=driver,
        vbios_version=vbios,
        fwid=fwid,
        revocation=revocation,
        rims=lookups,
        comparison=comparison,
        nonce_checked=submission.binding is not None,
    )
