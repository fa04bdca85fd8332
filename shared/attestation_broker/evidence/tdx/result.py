"""The frozen result of verifying one TDX quote (the reusable API's return type)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from attestation_broker.evidence.tdx.abi import Quote


@dataclass(frozen=True)
class TcbResult:
    """Merged TCB verdict: platform (SGX + TDX components), TDX module identity and QE identity.

    ``status`` is one of UpToDate, SWHardeningNeeded, ConfigurationNeeded,
    ConfigurationAndSWHardeningNeeded, OutOfDate, OutOfDateConfigurationNeeded, Revoked.
    """

    status: str
    date: datetime | None
    advisory_ids: tuple[str, ...]
    platform_status: str
    module_status: str | None
    qe_status: str
    module_identity: str | None
    fmspc: str
    pce_id: str
    pce_svn: int
    cpu_svn: bytes
    tcb_evaluation_data_number: int


@dataclass(frozen=True)
class TdxResult:
    """Everything a caller needs from one verified TDX quote.

    ``trustworthiness_vector``, ``attester_claims`` (normalized schema, ``tee = "tdx"``) and
    ``verifier_claims`` (``collateral`` records, ``bindings``, ``stale``) can be copied into an
    :class:`~attestation_broker.appraisal.Appraisal` as they are, or merged by a composite kind.
    """

    quote: Quote
    tcb: TcbResult
    trustworthiness_vector: Mapping[str, int]
    attester_claims: Mapping[str, Any]
    verifier_claims: Mapping[str, Any]
    findings: tuple[str, ...] = field(default=())
