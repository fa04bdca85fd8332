"""Normalize a verified TDX quote into the broker's claim schema (token/schema.json).

``tee = "tdx"``, ``measurement`` = MRTD, ``dbgstat`` from TD attributes DEBUG, ``tcb`` {status, date,
advisory_ids, component SVNs}, ``report_data``, and the raw fields under ``tdx`` (snake_case, lowercase hex).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from attestation_broker.evidence.tdx.abi import ATTR_DEBUG, ATTR_KL, ATTR_PERFMON, ATTR_PKS, ATTR_SEPT_VE_DISABLE, Quote
from attestation_broker.evidence.tdx.result import TcbResult


@lru_cache(maxsize=256)
def iso_utc(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``. Memoized: the TCB and collateral dates recur in every quote of a platform, and
    ``strftime`` cost about 6 µs a call, eight calls per quote."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(tcb: TcbResult) -> str | None:
    return iso_utc(tcb.date) if tcb.date else None


def attester_claims(quote: Quote, tcb: TcbResult) -> dict[str, Any]:
    body = quote.body
    attrs = body.attributes
    tdx: dict[str, Any] = {
        "quote_version": quote.version,
        "body_type": quote.body_type,
        "tee_tcb_svn": body.tee_tcb_svn.hex(),
        "mrseam": body.mr_seam.hex(),
        "mrsignerseam": body.mr_signer_seam.hex(),
        "seam_attributes": body.seam_attributes.hex(),
        "td_attributes": body.td_attributes.hex(),
        "attributes": {
            "debug": bool(attrs & ATTR_DEBUG),
            "sept_ve_disable": bool(attrs & ATTR_SEPT_VE_DISABLE),
            "pks": bool(attrs & ATTR_PKS),
            "kl": bool(attrs & ATTR_KL),
            "perfmon": bool(attrs & ATTR_PERFMON),
        },
        "xfam": body.xfam.hex(),
        "mrtd": body.mr_td.hex(),
        "mrconfigid": body.mr_config_id.hex(),
        "mrowner": body.mr_owner.hex(),
        "mrownerconfig": body.mr_owner_config.hex(),
        "rtmrs": [r.hex() for r in body.rtmrs],
        "report_data": body.report_data.hex(),
        "fmspc": tcb.fmspc,
        "pce_id": tcb.pce_id,
        "qe_svn": quote.qe_report.isv_svn,
        "qe_mrenclave": quote.qe_report.mr_enclave.hex(),
    }
    if body.tee_tcb_svn2 is not None and body.mr_servicetd is not None:
        tdx["tee_tcb_svn2"] = body.tee_tcb_svn2.hex()
        tdx["mrservicetd"] = body.mr_servicetd.hex()
    return {
        "tee": "tdx",
        "platform": "unknown",
        "measurement": body.mr_td.hex(),
        "dbgstat": "enabled" if body.debug else "disabled",
        "tcb": {
            "status": tcb.status,
            "date": _iso(tcb),
            "advisory_ids": list(tcb.advisory_ids),
            "platform_status": tcb.platform_status,
            "tdx_module_status": tcb.module_status,
            "qe_status": tcb.qe_status,
            "tdx_module_identity": tcb.module_identity,
            "pce_svn": tcb.pce_svn,
            "cpu_svn": tcb.cpu_svn.hex(),
            "tee_tcb_svn": body.tee_tcb_svn.hex(),
            "tcb_evaluation_data_number": tcb.tcb_evaluation_data_number,
        },
        "report_data": body.report_data.hex(),
        "tdx": tdx,
    }
