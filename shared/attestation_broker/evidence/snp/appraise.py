"""Appraisal policy for SEV-SNP reports and the grading of a verified report into an AR4SI
trustworthiness vector (draft-ietf-rats-ar4si §2.3; guest POLICY / PLATFORM_INFO per SEV-SNP ABI spec).

Policy section (``policy["snp"]``), unknown keys rejected::

    {
      "id": "prod-web",                     # policy id (default: derived from the content)
      "allow_any": false,                   # must be true for a policy that constrains nothing
      "measurements": ["<96 hex>", ...],    # allowed launch MEASUREMENTs
      "min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115, "fmc": 0},
      "allow_debug": false,                 # default false
      "max_vmpl": 3,                        # default 3 (any VMPL)
      "allow_smt": true,                    # false: PLATFORM_INFO.SMT_EN must be 0
      "allow_migration_agent": false,       # default false: POLICY.MIGRATE_MA must be 0
      "host_data": ["<64 hex>"], "id_key_digests": ["<96 hex>"], "author_key_digests": ["<96 hex>"],
      "family_ids": ["<32 hex>"], "image_ids": ["<32 hex>"],
      "products": ["Milan", "Genoa", "Turin"],
      "signing_keys": ["vcek", "vlek"],
      "min_abi": "1.51",                    # guest POLICY ABI major.minor minimum
      "min_guest_svn": 0
    }

The empty section is the default policy: debug forbidden, migration agent forbidden, VMPL 0–3, no
measurement list. A non-empty section that ends up constraining nothing is POLICY_INVALID unless it
says ``"allow_any": true``.

Grading (each line is one trustworthiness claim; the worst tier is the EAR status):

=================  ==========================================  =========================================
claim              affirming                                   warning / contraindicated
=================  ==========================================  =========================================
hardware           HW_GENUINE (2): chain to pinned ARK         HW_UNSAFE (32): REPORTED_TCB below
                                                               ``min_tcb``; HW_CONTRAINDICATED (96):
                                                               product line not in ``products``
instance-identity  IDENTITY_TRUSTED (2): VCEK/VLEK verified    –
configuration      CONFIG_APPROVED (2)                         CONFIG_CONTRAINDICATED (96): VMPL, SMT,
                                                               migration agent, ABI, guest SVN, host
                                                               data, ID/author key, family/image id or
                                                               signing key outside the policy
executables        EXEC_APPROVED_BOOT (3): MEASUREMENT listed  EXEC_UNRECOGNIZED (33): no list;
                                                               EXEC_CONTRAINDICATED (96): not listed
runtime-opaque     RUNTIME_ENCRYPTED (2)                       RUNTIME_VISIBLE (32): debug allowed by
                                                               policy; RUNTIME_CONTRAINDICATED (96):
                                                               debug under a policy forbidding it
=================  ==========================================  =========================================

TCB status: AMD publishes no TCB-status service for SNP (unlike Intel PCS), so the TCB is graded
``UpToDate`` unless the policy's ``min_tcb`` is violated, which grades it ``OutOfDate`` (HW_UNSAFE).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker.errors import POLICY_INVALID
from attestation_broker.evidence.common import (
    content_policy_id,
    policy_bool,
    policy_hex,
    policy_section,
    require_policy_id,
)
from attestation_broker.evidence.snp.abi import PRODUCTS, AttestationReport, TcbVersion

DEFAULT_POLICY_ID = "snp-default"
_TCB_KEYS = ("bootloader", "tee", "snp", "microcode", "fmc")
_HEX_LISTS = {
    "measurements": 48,
    "host_data": 32,
    "id_key_digests": 48,
    "author_key_digests": 48,
    "family_ids": 16,
    "image_ids": 16,
}
_KEYS = frozenset(
    {
        "id",
        "allow_any",
        "min_tcb",
        "allow_debug",
        "max_vmpl",
        "allow_smt",
        "allow_migration_agent",
        "products",
        "signing_keys",
        "min_abi",
        "min_guest_svn",
        *_HEX_LISTS,
    }
)


@dataclass(frozen=True)
class SnpPolicy:
    policy_id: str
    allow_any: bool = False
    measurements: frozenset[bytes] | None = None
    min_tcb: Mapping[str, int] | None = None
    allow_debug: bool = False
    max_vmpl: int = 3
    allow_smt: bool = True
    allow_migration_agent: bool = False
    host_data: frozenset[bytes] | None = None
    id_key_digests: frozenset[bytes] | None = None
    author_key_digests: frozenset[bytes] | None = None
    family_ids: frozenset[bytes] | None = None
    image_ids: frozenset[bytes] | None = None
    products: frozenset[str] | None = None
    signing_keys: frozenset[str] | None = None
    min_abi: tuple[int, int] | None = None
    min_guest_svn: int | None = None

    def constrains_something(self) -> bool:
        lists = (
            self.measurements,
            self.min_tcb,
            self.host_data,
            self.id_key_digests,
            self.author_key_digests,
            self.family_ids,
            self.image_ids,
            self.products,
            self.signing_keys,
            self.min_abi,
            self.min_guest_svn,
        )
        return (
            any(x is not None for x in lists)
            or not self.allow_debug
            or not self.allow_migration_agent
            or not self.allow_smt
            or self.max_vmpl < 3
        )


def _int(value: Any, key: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise POLICY_INVALID(f"snp policy: {key} must be an integer in {lo}..{hi}")
    return value


def _hex_list(value: Any, key: str, size: int) -> frozenset[bytes]:
    if not isinstance(value, list) or not value:
        raise POLICY_INVALID(f"snp policy: {key} must be a non-empty list of hex strings")
    return frozenset(policy_hex("snp", item, (size,), f"every {key} entry") for item in value)


def _names(value: Any, key: str, allowed: tuple[str, ...]) -> frozenset[str]:
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        raise POLICY_INVALID(f"snp policy: {key} must be a non-empty list drawn from {', '.join(allowed)}")
    return frozenset(value)


def _min_abi(value: Any) -> tuple[int, int]:
    if isinstance(value, str) and value.count(".") == 1:
        major, minor = value.split(".")
        if major.isdigit() and minor.isdigit():
            return _int(int(major), "min_abi", 0, 255), _int(int(minor), "min_abi", 0, 255)
    raise POLICY_INVALID('snp policy: min_abi must be "MAJOR.MINOR"')


def parse_policy(section: Mapping[str, Any]) -> SnpPolicy:
    """Parse and validate the ``snp`` policy section (see the module docstring)."""
    section = policy_section("snp", section, _KEYS)
    if not section:
        return SnpPolicy(policy_id=DEFAULT_POLICY_ID)
    explicit_id = section.get("id")
    policy_id = content_policy_id("snp-", section) if explicit_id is None else require_policy_id("snp", explicit_id)
    min_tcb = None
    if "min_tcb" in section:
        raw_tcb = section["min_tcb"]
        if not isinstance(raw_tcb, Mapping) or not raw_tcb or set(raw_tcb) - set(_TCB_KEYS):
            raise POLICY_INVALID(f"snp policy: min_tcb must map some of {', '.join(_TCB_KEYS)} to SVNs")
        min_tcb = {k: _int(v, f"min_tcb.{k}", 0, 255) for k, v in raw_tcb.items()}
    hex_lists = {key: _hex_list(section[key], key, size) for key, size in _HEX_LISTS.items() if key in section}
    policy = SnpPolicy(
        policy_id=policy_id,
        allow_any=policy_bool("snp", section, "allow_any", False),
        min_tcb=min_tcb,
        allow_debug=policy_bool("snp", section, "allow_debug", False),
        max_vmpl=_int(section.get("max_vmpl", 3), "max_vmpl", 0, 3),
        allow_smt=policy_bool("snp", section, "allow_smt", True),
        allow_migration_agent=policy_bool("snp", section, "allow_migration_agent", False),
        products=_names(section["products"], "products", PRODUCTS) if "products" in section else None,
        signing_keys=_names(section["signing_keys"], "signing_keys", ("vcek", "vlek"))
        if "signing_keys" in section
        else None,
        min_abi=_min_abi(section["min_abi"]) if "min_abi" in section else None,
        min_guest_svn=_int(section["min_guest_svn"], "min_guest_svn", 0, 2**32 - 1)
        if "min_guest_svn" in section
        else None,
        **hex_lists,
    )
    if not policy.allow_any and not policy.constrains_something():
        raise POLICY_INVALID('snp policy constrains nothing; set "allow_any": true to accept any SNP guest')
    return policy


@dataclass(frozen=True)
class Grade:
    vector: Mapping[str, int]
    tcb_status: str
    findings: tuple[str, ...]


def appraise(report: AttestationReport, tcb: TcbVersion, product: str, signing_key: str, policy: SnpPolicy) -> Grade:
    """Grade a verified report against ``policy`` (never raises for policy outcomes: they are graded)."""
    findings: list[str] = []

    hardware = ar4si.HW_GENUINE
    tcb_status = "UpToDate"
    if policy.min_tcb is not None:
        have = tcb.as_dict()
        low = [k for k, v in policy.min_tcb.items() if k in have and have[k] < v]
        if low:
            hardware, tcb_status = ar4si.HW_UNSAFE, "OutOfDate"
            findings.append(f"REPORTED_TCB below policy minimum for {', '.join(sorted(low))}")
    if policy.products is not None and product not in policy.products:
        hardware = ar4si.HW_CONTRAINDICATED
        findings.append(f"product line {product} not allowed by policy")

    configuration = ar4si.CONFIG_APPROVED

    def config_violation(reason: str) -> None:
        nonlocal configuration
        configuration = ar4si.CONFIG_CONTRAINDICATED
        findings.append(reason)

    bits = report.policy_bits()
    if report.vmpl > policy.max_vmpl:
        config_violation(f"VMPL {report.vmpl} exceeds policy maximum {policy.max_vmpl}")
    if not policy.allow_smt and report.platform_info_bits()["smt_en"]:
        config_violation("SMT is enabled on the platform and policy forbids it")
    if not policy.allow_migration_agent and bits["migrate_ma"]:
        config_violation("guest policy allows a migration agent and policy forbids it")
    if policy.min_abi is not None and (report.abi_major, report.abi_minor) < policy.min_abi:
        config_violation(f"guest policy ABI {report.abi_major}.{report.abi_minor} below policy minimum")
    if policy.min_guest_svn is not None and report.guest_svn < policy.min_guest_svn:
        config_violation(f"GUEST_SVN {report.guest_svn} below policy minimum {policy.min_guest_svn}")
    if policy.signing_keys is not None and signing_key not in policy.signing_keys:
        config_violation(f"signing key {signing_key} not allowed by policy")
    for name, allowed, actual in (
        ("HOST_DATA", policy.host_data, report.host_data),
        ("ID_KEY_DIGEST", policy.id_key_digests, report.id_key_digest),
        ("AUTHOR_KEY_DIGEST", policy.author_key_digests, report.author_key_digest),
        ("FAMILY_ID", policy.family_ids, report.family_id),
        ("IMAGE_ID", policy.image_ids, report.image_id),
    ):
        if allowed is not None and actual not in allowed:
            config_violation(f"{name} not in the policy allow-list")

    if policy.measurements is None:
        executables = ar4si.EXEC_UNRECOGNIZED
        findings.append("no measurement allow-list in policy: launch measurement not appraised")
    elif report.measurement in policy.measurements:
        executables = ar4si.EXEC_APPROVED_BOOT
    else:
        executables = ar4si.EXEC_CONTRAINDICATED
        findings.append("launch MEASUREMENT not in the policy allow-list")

    if not report.debug:
        runtime = ar4si.RUNTIME_ENCRYPTED
    elif policy.allow_debug:
        runtime = ar4si.RUNTIME_VISIBLE
        findings.append("guest policy DEBUG is set: the host can read guest memory")
    else:
        runtime = ar4si.RUNTIME_CONTRAINDICATED
        findings.append("guest policy DEBUG is set and policy forbids debug guests")

    vector = {
        "instance-identity": ar4si.IDENTITY_TRUSTED,
        "configuration": configuration,
        "executables": executables,
        "hardware": hardware,
        "runtime-opaque": runtime,
    }
    return Grade(vector=vector, tcb_status=tcb_status, findings=tuple(findings))
