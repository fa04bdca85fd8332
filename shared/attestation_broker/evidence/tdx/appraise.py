"""Grading of a verified TDX quote into registered AR4SI trustworthiness values (facts only; the operator's
policy is applied afterwards by the policy engine, docs/policy.md).

Vector: hardware HW_GENUINE for UpToDate / SWHardeningNeeded / ConfigurationNeeded*, HW_UNSAFE (32) for
OutOfDate* or stale collateral, HW_CONTRAINDICATED (96) for Revoked; configuration CONFIG_UNSAFE (32,
"known vulnerabilities") for SWHardeningNeeded / ConfigurationNeeded*; executables EXEC_UNRECOGNIZED (33)
until a policy's reference_values match; runtime-opaque RUNTIME_ENCRYPTED (2), or RUNTIME_VISIBLE (96) for
a debug TD. :class:`TdxPolicy` holds the grading parameters; the kind always uses :data:`FACTS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from attestation_broker import appraisal as ar4si
from attestation_broker.evidence.tdx.abi import ATTR_SEPT_VE_DISABLE, Quote
from attestation_broker.evidence.tdx.result import TcbResult

DEFAULT_POLICY_ID = "tdx-default"
DEFAULT_ACCEPTED = (
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
)
_OUT_OF_DATE = ("OutOfDate", "OutOfDateConfigurationNeeded")
_ALLOW_LISTS = {
    "mrtd": 48,
    "rtmr0": 48,
    "rtmr1": 48,
    "rtmr2": 48,
    "rtmr3": 48,
    "mrconfigid": 48,
    "mrowner": 48,
    "mrownerconfig": 48,
    "xfam": 8,
    "mrsignerseam": 48,
}
_KEYS = {
    "id",
    "accepted_tcb_statuses",
    "out_of_date_grace_days",
    "rejected_advisory_ids",
    "allow_debug",
    "require_sept_ve_disable",
    "min_tee_tcb_svn",
    *_ALLOW_LISTS,
}


@dataclass(frozen=True)
class TdxPolicy:
    id: str = DEFAULT_POLICY_ID
    accepted_tcb_statuses: frozenset[str] = frozenset(DEFAULT_ACCEPTED)
    out_of_date_grace_days: int | None = None
    rejected_advisory_ids: frozenset[str] = frozenset()
    allow_debug: bool = False
    require_sept_ve_disable: bool = False
    min_tee_tcb_svn: bytes | None = None
    allow_lists: Mapping[str, frozenset[bytes]] | None = None


FACTS = TdxPolicy()


@dataclass(frozen=True)
class Verdict:
    vector: Mapping[str, int]
    findings: tuple[str, ...]


def _hardware(tcb: TcbResult, policy: TdxPolicy, quote: Quote, now: datetime, findings: list[str]) -> int:
    status = tcb.status
    if status == "Revoked":
        findings.append("TCB status Revoked")
        return ar4si.HW_CONTRAINDICATED
    if status not in policy.accepted_tcb_statuses:
        findings.append(f"TCB status {status} is not accepted by policy")
        return ar4si.HW_CONTRAINDICATED
    rejected = sorted(set(tcb.advisory_ids) & policy.rejected_advisory_ids)
    if rejected:
        findings.append(f"TCB has rejected advisories {', '.join(rejected)}")
        return ar4si.HW_CONTRAINDICATED
    if policy.min_tee_tcb_svn is not None and any(
        have < need for have, need in zip(quote.body.tee_tcb_svn, policy.min_tee_tcb_svn, strict=True)
    ):
        findings.append("TEE_TCB_SVN is below the policy minimum")
        return ar4si.HW_CONTRAINDICATED
    if status in _OUT_OF_DATE:
        grace = policy.out_of_date_grace_days
        if grace is not None and (tcb.date is None or now > tcb.date + timedelta(days=grace)):
            findings.append(f"TCB status {status} is past the {grace}-day grace period")
            return ar4si.HW_CONTRAINDICATED
        findings.append(f"TCB status {status}")
        return ar4si.HW_UNSAFE
    return ar4si.HW_GENUINE


def _configuration(tcb: TcbResult, policy: TdxPolicy, quote: Quote, findings: list[str]) -> int:
    body = quote.body
    lists = policy.allow_lists or {}
    fields = {
        "mrconfigid": body.mr_config_id,
        "mrowner": body.mr_owner,
        "mrownerconfig": body.mr_owner_config,
        "xfam": body.xfam,
        "mrsignerseam": body.mr_signer_seam,
    }
    bad = [name for name, value in fields.items() if name in lists and value not in lists[name]]
    if policy.require_sept_ve_disable and not body.attributes & ATTR_SEPT_VE_DISABLE:
        bad.append("SEPT_VE_DISABLE")
    if bad:
        findings.append(f"configuration not allowed by policy: {', '.join(bad)}")
        return ar4si.CONFIG_CONTRAINDICATED
    if "ConfigurationNeeded" in tcb.status or tcb.status == "ConfigurationAndSWHardeningNeeded":
        findings.append(f"TCB status {tcb.status}: platform configuration needed")
        return ar4si.CONFIG_UNSAFE
    if "SWHardeningNeeded" in tcb.status:
        findings.append("TCB status SWHardeningNeeded")
        return ar4si.CONFIG_UNSAFE
    return ar4si.CONFIG_APPROVED


def _executables(policy: TdxPolicy, quote: Quote, findings: list[str]) -> int:
    body = quote.body
    lists = policy.allow_lists or {}
    measured = {"mrtd": body.mr_td, **{f"rtmr{i}": body.rtmrs[i] for i in range(4)}}
    present = [name for name in measured if name in lists]
    if not present:
        return ar4si.EXEC_UNRECOGNIZED
    bad = [name for name in present if measured[name] not in lists[name]]
    if bad:
        findings.append(f"measurements not in policy allow-list: {', '.join(bad)}")
        return ar4si.EXEC_CONTRAINDICATED
    return ar4si.EXEC_APPROVED_RUNTIME if "rtmr3" in present else ar4si.EXEC_APPROVED_BOOT


def _runtime(policy: TdxPolicy, quote: Quote, findings: list[str]) -> int:
    if not quote.body.debug:
        return ar4si.RUNTIME_ENCRYPTED
    findings.append("TD attributes DEBUG is set: the host can read TD memory")
    return ar4si.RUNTIME_VISIBLE


def appraise(quote: Quote, tcb: TcbResult, policy: TdxPolicy, now: datetime, *, stale: bool) -> Verdict:
    findings: list[str] = []
    hardware = _hardware(tcb, policy, quote, now, findings)
    if stale and hardware < ar4si.HW_UNSAFE:
        # The TCB verdict rests on collateral past its nextUpdate: say so with a warning.
        hardware = ar4si.HW_UNSAFE
    if stale:
        findings.append("collateral served stale (origin unavailable) within the configured grace")
    vector = {
        "hardware": hardware,
        "configuration": _configuration(tcb, policy, quote, findings),
        "executables": _executables(policy, quote, findings),
        "runtime-opaque": _runtime(policy, quote, findings),
    }
    return Verdict(vector, tuple(findings))
