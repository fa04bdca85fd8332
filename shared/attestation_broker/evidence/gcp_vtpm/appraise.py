"""``gcp-vtpm`` appraisal policy and grading into an AR4SI trustworthiness vector.

Policy section (``policy["gcp-vtpm"]``), unknown keys rejected (POLICY_INVALID)::

    {
      "id": "gce-prod",                       # policy id (default "gcp-vtpm-default")
      "projects": ["my-project"],             # allowed project_id values (AK cert identity)
      "zones": ["us-central1-a"],             # allowed zones
      "instance_ids": [6797026933021542085],  # allowed instance ids
      "require_event_log": false,             # default false
      "require_secure_boot": false,           # default false (needs the event log)
      "require_tee": false,                   # default false: a Shielded VM vTPM alone is acceptable
      "ignore_pcrs": [10],                    # PCRs not replayed from the firmware log (default [10], IMA)
      "pcrs": {"sha256": {"4": ["<hex>", ...]}},  # boot allow-list: quoted PCR value must be listed
      "snp": {...}, "tdx": {...}              # sections passed to the SEV-SNP / TDX verifiers
    }

Grading (vTPM part; a TEE part contributes its own vector and the worse value of each claim wins):

=================  =============================================  ======================================
claim              affirming                                      warning / contraindicated
=================  =============================================  ======================================
instance-identity  IDENTITY_TRUSTED: AK cert chains to a pinned   (no claim when the cert has no
                   Google root and certifies a GCE instance       instance identity extension)
configuration      CONFIG_APPROVED: secure boot on (event log)    CONFIG_UNSAFE: secure boot off
executables        EXEC_APPROVED_BOOT: every listed PCR matched   EXEC_UNRECOGNIZED: no allow-list
hardware / runtime from the TEE verifier when a TEE report is      (no claim for a vTPM alone: Google's
-opaque            present                                        vTPM is not hardware-rooted)
=================  =============================================  ======================================

Policy constraints that fail (project, zone, instance, required log / secure boot / TEE, a PCR value
outside the allow-list) raise POLICY_REJECTED.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_INVALID, POLICY_REJECTED

from .pipeline import VerifiedGcp

DEFAULT_POLICY_ID = "gcp-vtpm-default"
_KEYS = frozenset(
    {
        "id",
        "projects",
        "zones",
        "instance_ids",
        "require_event_log",
        "require_secure_boot",
        "require_tee",
        "ignore_pcrs",
        "pcrs",
        "snp",
        "tdx",
    }
)
_BANK_SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True)
class GcpPolicy:
    id: str = DEFAULT_POLICY_ID
    projects: tuple[str, ...] | None = None
    zones: tuple[str, ...] | None = None
    instance_ids: tuple[int, ...] | None = None
    require_event_log: bool = False
    require_secure_boot: bool = False
    require_tee: bool = False
    ignore_pcrs: tuple[int, ...] = (10,)
    pcrs: Mapping[str, Mapping[int, frozenset[str]]] | None = None
    tee: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def _bool(doc: Mapping[str, Any], key: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise POLICY_INVALID(f"gcp-vtpm policy {key} must be a boolean")
    return value


def _strings(doc: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    if key not in doc:
        return None
    value = doc[key]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise POLICY_INVALID(f"gcp-vtpm policy {key} must be a non-empty list of strings")
    return tuple(value)


def _ints(value: Any, key: str, *, allow_empty: bool) -> tuple[int, ...]:
    ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    if not ok or (not value and not allow_empty):
        raise POLICY_INVALID(f"gcp-vtpm policy {key} must be a list of non-negative integers")
    return tuple(value)


def _pcrs(value: Any) -> Mapping[str, Mapping[int, frozenset[str]]]:
    if not isinstance(value, dict) or not value:
        raise POLICY_INVALID("gcp-vtpm policy pcrs must map a bank to {index: [hex, ...]}")
    out: dict[str, dict[int, frozenset[str]]] = {}
    for bank, table in value.items():
        size = _BANK_SIZES.get(bank)
        if size is None or not isinstance(table, dict) or not table:
            raise POLICY_INVALID(f"gcp-vtpm policy pcrs bank {bank!r} is invalid")
        out[bank] = {}
        for index, allowed in table.items():
            if not str(index).isdigit() or int(index) > 23:
                raise POLICY_INVALID(f"gcp-vtpm policy pcrs index {index!r} is invalid")
            values = allowed if isinstance(allowed, list) else None
            if not values or not all(isinstance(v, str) and len(v) == 2 * size for v in values):
                raise POLICY_INVALID(f"gcp-vtpm policy pcrs {bank}/{index} must list {2 * size}-hex values")
            try:
                out[bank][int(index)] = frozenset(bytes.fromhex(v).hex() for v in values)
            except ValueError:
                raise POLICY_INVALID(f"gcp-vtpm policy pcrs {bank}/{index} has non-hex values") from None
    return out


def parse_policy(doc: Mapping[str, Any]) -> GcpPolicy:
    if not isinstance(doc, Mapping):
        raise POLICY_INVALID("gcp-vtpm policy must be an object")
    unknown = set(doc) - _KEYS
    if unknown:
        raise POLICY_INVALID(f"gcp-vtpm policy has unknown keys: {', '.join(sorted(unknown))}")
    policy_id = doc.get("id", DEFAULT_POLICY_ID)
    if not isinstance(policy_id, str) or not policy_id:
        raise POLICY_INVALID("gcp-vtpm policy id must be a non-empty string")
    tee: dict[str, Mapping[str, Any]] = {}
    for key in ("snp", "tdx"):
        if key in doc:
            if not isinstance(doc[key], Mapping):
                raise POLICY_INVALID(f"gcp-vtpm policy {key} must be an object")
            tee[key] = doc[key]
    return GcpPolicy(
        id=policy_id,
        projects=_strings(doc, "projects"),
        zones=_strings(doc, "zones"),
        instance_ids=_ints(doc["instance_ids"], "instance_ids", allow_empty=False) if "instance_ids" in doc else None,
        require_event_log=_bool(doc, "require_event_log"),
        require_secure_boot=_bool(doc, "require_secure_boot"),
        require_tee=_bool(doc, "require_tee"),
        ignore_pcrs=_ints(doc["ignore_pcrs"], "ignore_pcrs", allow_empty=True) if "ignore_pcrs" in doc else (10,),
        pcrs=_pcrs(doc["pcrs"]) if "pcrs" in doc else None,
        tee=tee,
    )


def _worse(a: int, b: int) -> int:
    order = [ar4si.EarStatus.NONE, ar4si.EarStatus.AFFIRMING, ar4si.EarStatus.WARNING, ar4si.EarStatus.CONTRAINDICATED]
    return a if order.index(ar4si.tier(a)) >= order.index(ar4si.tier(b)) else b


def appraise(verified: VerifiedGcp, policy: GcpPolicy) -> tuple[dict[str, int], tuple[str, ...]]:
    """Apply the policy (raising POLICY_REJECTED) and grade; return (vector, findings)."""
    findings = list(verified.findings)
    ident = verified.ak_cert.identity
    checks: tuple[tuple[tuple[object, ...] | None, object, str], ...] = (
        (policy.projects, ident.project_id if ident else None, "project"),
        (policy.zones, ident.zone if ident else None, "zone"),
        (policy.instance_ids, ident.instance_id if ident else None, "instance id"),
    )
    for allowed, value, name in checks:
        if allowed is not None and value not in allowed:
            raise POLICY_REJECTED(f"GCE {name} is not allowed by policy {policy.id}")
    log = verified.event_log
    if policy.require_event_log and log is None:
        raise POLICY_REJECTED(f"policy {policy.id} requires an event log")
    secure_boot = log.secure_boot.enabled if log is not None and log.secure_boot is not None else None
    if policy.require_secure_boot and secure_boot is not True:
        raise POLICY_REJECTED(f"policy {policy.id} requires secure boot")
    if policy.require_tee and verified.tee is None:
        raise POLICY_REJECTED(f"policy {policy.id} requires a SEV-SNP or TDX report")

    vector: dict[str, int] = {}
    if ident is not None:
        vector["instance-identity"] = ar4si.IDENTITY_TRUSTED
    if secure_boot is True:
        vector["configuration"] = ar4si.CONFIG_APPROVED
    elif secure_boot is False:
        vector["configuration"] = ar4si.CONFIG_UNSAFE
        findings.append("secure boot is disabled")
    if policy.pcrs is None:
        vector["executables"] = ar4si.EXEC_UNRECOGNIZED
    else:
        for bank, table in policy.pcrs.items():
            quote = verified.quote(bank)
            if quote is None or quote.pcrs is None:
                raise POLICY_REJECTED(f"policy {policy.id} lists {bank} PCRs but that bank is not quoted")
            for index, allowed_values in table.items():
                pcr = quote.pcrs.get(index)
                if pcr is None or pcr.hex() not in allowed_values:
                    raise POLICY_REJECTED(f"{bank} PCR {index} is not in the allow-list of policy {policy.id}")
        vector["executables"] = ar4si.EXEC_APPROVED_BOOT
    if verified.tee is not None:
        for claim, value in verified.tee.trustworthiness_vector.items():
            vector[claim] = _worse(vector[claim], value) if claim in vector else value
        findings.extend(verified.tee.findings)
    return vector, tuple(findings)
