"""TDX TCB status evaluation: platform level, TDX module identity and QE identity, merged as the worse.

Follows Intel's Quote Verification Library (QVL) rules for TDX quotes with TCB info v3:

1. Platform level: the first ``tcbLevels`` entry whose 16 SGX components and PCESVN are <= the PCK
   certificate's, and whose 16 TDX components are <= TEE_TCB_SVN. When TEE_TCB_SVN[1] (the TDX module
   major version) is non-zero, components 0 and 1 describe the module and are judged by its identity
   instead (step 2), so only components 2..15 are compared (QVL ``isTdxTcbHigherOrEqual``).
2. TDX module: with TEE_TCB_SVN[1] > 0 the identity ``TDX_<major, 2 digits>`` from
   ``tdxModuleIdentities`` must exist, match MRSIGNERSEAM and masked SEAM attributes, and its first
   level with ISVSVN <= TEE_TCB_SVN[0] gives the module status. With major 0 only ``tdxModule`` is matched.
3. QE: the QE report must match the TD_QE identity (MRSIGNER, ISVPRODID, masked MISCSELECT and
   ATTRIBUTES); its first level with ISVSVN <= the QE's gives the QE status.
4. Merge: an OutOfDate module or QE turns UpToDate/SWHardeningNeeded into OutOfDate and the
   Configuration* statuses into OutOfDateConfigurationNeeded; a Revoked one makes the result Revoked.

No matching level anywhere is TDX_TCB_LEVEL_NOT_FOUND (Intel: TCB not supported).
"""

from __future__ import annotations

from datetime import datetime

from attestation_broker.evidence.tdx.abi import Quote
from attestation_broker.evidence.tdx.errors import (
    TDX_MODULE_MISMATCH,
    TDX_QE_IDENTITY_MISMATCH,
    TDX_TCB_LEVEL_NOT_FOUND,
)
from attestation_broker.evidence.tdx.pck import PckExtensions
from attestation_broker.evidence.tdx.pcs import IsvLevel, ModuleIdentity, QeIdentity, TcbInfo, TcbLevel
from attestation_broker.evidence.tdx.result import TcbResult

_CONFIG = ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded")


def _platform_level(info: TcbInfo, pck: PckExtensions, tee_tcb_svn: bytes) -> TcbLevel:
    first_tdx = 2 if tee_tcb_svn[1] > 0 else 0
    for level in info.levels:
        if pck.pce_svn < level.pce_svn:
            continue
        if any(have < need for have, need in zip(pck.components, level.sgx, strict=True)):
            continue
        if any(tee_tcb_svn[i] < level.tdx[i] for i in range(first_tdx, 16)):
            continue
        return level
    raise TDX_TCB_LEVEL_NOT_FOUND("no platform TCB level matches the PCK and TEE_TCB_SVN")


def _masked_equal(value: bytes, mask: bytes, expected: bytes) -> bool:
    return all((v & m) == (e & m) for v, m, e in zip(value, mask, expected, strict=True))


def _first_isv_level(levels: tuple[IsvLevel, ...], svn: int, what: str) -> IsvLevel:
    for level in levels:
        if svn >= level.isv_svn:
            return level
    raise TDX_TCB_LEVEL_NOT_FOUND(f"no {what} TCB level matches ISVSVN {svn}")


def _module(info: TcbInfo, quote: Quote) -> tuple[str | None, IsvLevel | None]:
    body = quote.body
    major = body.tee_tcb_svn[1]
    if major == 0:
        module = info.tdx_module
        if module is not None:
            _check_module(module, quote)
        return None, None
    name = f"TDX_{major:02d}"
    identity = next((m for m in info.module_identities if m.id == name), None)
    if identity is None:
        raise TDX_TCB_LEVEL_NOT_FOUND(f"TCB info has no TDX module identity {name}")
    _check_module(identity, quote)
    return name, _first_isv_level(identity.levels, body.tee_tcb_svn[0], f"TDX module {name}")


def _check_module(module: ModuleIdentity, quote: Quote) -> None:
    body = quote.body
    if body.mr_signer_seam != module.mrsigner:
        raise TDX_MODULE_MISMATCH("MRSIGNERSEAM differs from the TDX module identity")
    if not _masked_equal(body.seam_attributes, module.attributes_mask, module.attributes):
        raise TDX_MODULE_MISMATCH("SEAM attributes differ from the TDX module identity")


def check_qe_identity(identity: QeIdentity, quote: Quote) -> IsvLevel:
    """Match the QE report against TD_QE identity; return the QE's TCB level."""
    qe = quote.qe_report
    if identity.id != "TD_QE":
        raise TDX_QE_IDENTITY_MISMATCH(f"QE identity {identity.id!r} is not TD_QE")
    if qe.mr_signer != identity.mrsigner:
        raise TDX_QE_IDENTITY_MISMATCH("QE MRSIGNER differs")
    if qe.isv_prod_id != identity.isv_prod_id:
        raise TDX_QE_IDENTITY_MISMATCH("QE ISVPRODID differs")
    if (qe.misc_select & identity.miscselect_mask) != (identity.miscselect & identity.miscselect_mask):
        raise TDX_QE_IDENTITY_MISMATCH("QE MISCSELECT differs")
    if not _masked_equal(qe.attributes, identity.attributes_mask, identity.attributes):
        raise TDX_QE_IDENTITY_MISMATCH("QE ATTRIBUTES differ")
    return _first_isv_level(identity.levels, qe.isv_svn, "QE")


def _converge(status: str, other: str | None) -> str:
    if other == "Revoked":
        return "Revoked"
    if other == "OutOfDate":
        if status in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if status in _CONFIG:
            return "OutOfDateConfigurationNeeded"
    return status


def evaluate_tcb(info: TcbInfo, identity: QeIdentity, quote: Quote, pck: PckExtensions) -> TcbResult:
    """Full TDX TCB evaluation; raises TDX_TCB_LEVEL_NOT_FOUND / *_MISMATCH codes."""
    platform = _platform_level(info, pck, quote.body.tee_tcb_svn)
    module_name, module_level = _module(info, quote)
    qe_level = check_qe_identity(identity, quote)
    status = platform.status
    status = _converge(status, module_level.status if module_level else None)
    status = _converge(status, qe_level.status)
    advisories: list[str] = []
    matched: list[TcbLevel | IsvLevel] = [platform, qe_level]
    if module_level is not None:
        matched.append(module_level)
    for level in matched:
        advisories.extend(i for i in level.advisory_ids if i not in advisories)
    # tcbDate: the earliest date among the levels that are not UpToDate (they set the status), else the platform's.
    dates: list[datetime] = [lv.date for lv in matched if lv.status != "UpToDate"] or [platform.date]
    return TcbResult(
        status=status,
        date=min(dates),
        advisory_ids=tuple(advisories),
        platform_status=platform.status,
        module_status=module_level.status if module_level else None,
        qe_status=qe_level.status,
        module_identity=module_name,
        fmspc=pck.fmspc.hex(),
        pce_id=pck.pce_id.hex(),
        pce_svn=pck.pce_svn,
        cpu_svn=pck.cpu_svn,
        tcb_evaluation_data_number=info.eval_number,
    )
