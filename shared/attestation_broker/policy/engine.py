"""The appraisal policy engine: one evaluation over the normalized claims of every evidence kind.

Runs in :meth:`attestation_broker.usecases.Broker.attest` after the kind's verifier has returned an
:class:`~attestation_broker.appraisal.Appraisal` (verified facts: normalized attester claims, verifier
claims and a trustworthiness vector graded from TCB/debug facts). It checks the matched policy rule by rule
and yields a :class:`Decision`: the final appraisal (vector adjusted by the policy, policy id set) and every
rule's outcome. The issuance contract (docs/policy.md "Issuance contract") is then enforced in one place by
the Broker: a token only for an affirming or warning result with no failed rule.

Vector effects of passing rules: matched ``reference_values`` raise an unrecognized ``executables`` (33) to
approved-boot (3); a matched pinned ``ak_keys`` entry raises an unrecognized ``instance-identity`` (97) to
trustworthy (2); ``debug: allowed`` waives the registered ``runtime-opaque`` 96 of a debug guest (status at
most warning, the value stays). A failed rule sets its claim to the registered contraindicated value 96,
which only matters when the operator opted into EAR-style contraindicated tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import TCB_STATUSES, Appraisal, EarStatus
from attestation_broker.policy import cel
from attestation_broker.policy.document import Policy

if TYPE_CHECKING:
    from attestation_broker.trust.currency import TcbCurrencyView

_MISSING = object()
_OUT_OF_DATE = ("OutOfDate", "OutOfDateConfigurationNeeded")


def claim_at(appraisal: Appraisal, path: str) -> Any:
    """The value at a dotted path in the attester claims (``verifier.`` prefix: verifier claims); list
    elements by index (``tdx.rtmrs.0``). Returns ``_MISSING`` when absent."""
    node: Any = appraisal.attester_claims
    if path.startswith("verifier."):
        node, path = appraisal.verifier_claims, path[len("verifier.") :]
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _shown(value: Any) -> Any:
    return "(absent)" if value is _MISSING else value


class TcbCurrency(Protocol):
    """When did the TCB level that is current for this platform appear? (TCB-recovery grace periods.)

    The ``collateral`` recorder (trust/refresh.py) can answer from the first time it saw a TCB evaluation
    data number; the default answers from the evidence itself."""

    def current_level_since(self, appraisal: Appraisal) -> datetime | None: ...


class EvidenceTcbDate:
    """Default: the TCB date of the platform's own level (``tcb.date``). That level is older than the one
    that superseded it, so a grace period counted from it can only end early, never late."""

    def current_level_since(self, appraisal: Appraisal) -> datetime | None:
        tcb = appraisal.attester_claims.get("tcb")
        date = tcb.get("date") if isinstance(tcb, Mapping) else None
        if not isinstance(date, str):
            return None
        try:
            return datetime.fromisoformat(date.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            return None


class RecordedTcbCurrency:
    """Grace periods counted from when the platform's current TCB level was published, as the collateral
    refresher recorded it (:mod:`attestation_broker.trust.currency`, docs/collateral.md "TCB currency").

    The scope is read from the normalized claims: ``tdx.fmspc`` → Intel ``tdx:<FMSPC>`` (the publication date
    of the first TCB info carrying the current TCB evaluation data number, else when it was first seen);
    ``snp.product`` → AMD ``<product>`` (when the newest TCB was first seen). A platform with no record falls
    back to :class:`EvidenceTcbDate`, which can only end a grace period early. The record is loaded on first
    use, so a cold start that never evaluates a grace period never reads the shared store.
    """

    def __init__(self, load: Callable[[], TcbCurrencyView], fallback: TcbCurrency | None = None) -> None:
        self._load = load
        self._view: TcbCurrencyView | None = None
        self._fallback: TcbCurrency = fallback if fallback is not None else EvidenceTcbDate()

    def current_level_since(self, appraisal: Appraisal) -> datetime | None:
        scope = self._scope(appraisal)
        if scope is not None:
            if self._view is None:
                self._view = self._load()
            level = self._view.current(*scope)
            if level is not None:
                return (level.published or level.since).astimezone(UTC)
        return self._fallback.current_level_since(appraisal)

    @staticmethod
    def _scope(appraisal: Appraisal) -> tuple[str, str] | None:
        fmspc = claim_at(appraisal, "tdx.fmspc")
        if isinstance(fmspc, str) and fmspc:
            return ("intel", f"tdx:{fmspc.upper()}")
        product = claim_at(appraisal, "snp.product")
        if isinstance(product, str) and product:
            return ("amd", product)
        return None


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome; ``expected``/``actual`` are claim values or short summaries (never evidence bytes)."""

    policy: str
    rule: str
    passed: bool
    expected: Any
    actual: Any
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "expected": self.expected,
            "actual": self.actual,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Decision:
    policy: Policy
    appraisal: Appraisal  # final: adjusted vector, waived claims, policy id
    results: tuple[RuleResult, ...]

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def status(self) -> EarStatus:
        return self.appraisal.status


_RULE_CLAIM = {
    "reference_values": "executables",
    "debug": "runtime-opaque",
    "min_tcb_status": "hardware",
    "tcb_minimums": "hardware",
    "tcb_recovery.grace_days": "hardware",
    "tcb_recovery.min_tcb_date": "hardware",
    "tcb_recovery.accepted_advisories": "hardware",
    "nonce": "instance-identity",
    "ak_keys": "instance-identity",
    "max_evidence_age_seconds": "configuration",
}


class PolicyEngine:
    def __init__(self, *, tcb_currency: TcbCurrency | None = None) -> None:
        self.tcb_currency: TcbCurrency = tcb_currency if tcb_currency is not None else EvidenceTcbDate()

    def evaluate(self, policy: Policy, appraisal: Appraisal, *, now: datetime, nonce_bound: bool) -> Decision:
        results: list[RuleResult] = []
        vector = dict(appraisal.trustworthiness_vector)
        waived: list[str] = []
        penalties: set[str] = set()

        def add(rule: str, passed: bool, expected: Any, actual: Any, detail: str) -> None:
            results.append(RuleResult(policy.name, rule, passed, expected, _shown(actual), detail))
            if not passed:
                penalties.add(_RULE_CLAIM.get(rule, "configuration"))

        self._reference_values(policy, appraisal, vector, add)
        self._debug(policy, appraisal, waived, add)
        self._tcb(policy, appraisal, now, add)
        if policy.nonce_required:
            add(
                "nonce",
                nonce_bound,
                "a broker nonce bound into the evidence",
                "bound" if nonce_bound else "none",
                "the evidence binds the broker nonce" if nonce_bound else "no broker nonce was bound",
            )
        if policy.ak_keys:
            self._ak_keys(policy, appraisal, vector, add)
        for path, allowed in policy.claim_constraints.items():
            actual = claim_at(appraisal, path)
            ok = actual is not _MISSING and _norm(actual) in allowed
            add(f"claims.{path}", ok, list(allowed), actual, "allowed" if ok else f"{path} is not an allowed value")
        if policy.max_evidence_age_seconds is not None:
            self._age(policy, appraisal, now, add)
        if policy.conditions:
            bound = cel.activation(
                appraisal.kind,
                appraisal.attester_claims,
                appraisal.verifier_claims,
                appraisal.trustworthiness_vector,
                now,
                policy.conditions,
            )
            for condition in policy.conditions:
                ok, detail = cel.evaluate(condition, bound)
                add(f"conditions.{condition.name}", ok, condition.source, ok, detail)
        # The issuance contract's last rule, over the vector as the rules above left it (before penalties).
        status = ar4si.status_of(vector, waived)
        if status not in (EarStatus.AFFIRMING, EarStatus.WARNING):
            bad = {k: v for k, v in vector.items() if ar4si.tier(v) is EarStatus.CONTRAINDICATED and k not in waived}
            results.append(
                RuleResult(
                    policy.name,
                    "trustworthiness",
                    False,
                    "affirming or warning",
                    {"ear_status": status.value, **bad},
                    "; ".join(appraisal.findings)[:300] or f"the appraisal is {status.value}",
                )
            )
        # A failed rule makes its claim contraindicated (only visible in opted-in contraindicated tokens).
        for claim in penalties:
            vector[claim] = max(vector.get(claim, ar4si.NO_CLAIM), ar4si.CONTRAINDICATED)
        final = replace(
            appraisal,
            trustworthiness_vector=vector,
            policy_ids=(policy.id,),
            waived=tuple(waived),
        )
        return Decision(policy, final, tuple(results))

    # --- rules -------------------------------------------------------------------------------------------
    @staticmethod
    def _reference_values(policy: Policy, appraisal: Appraisal, vector: dict[str, int], add: Any) -> None:
        if not policy.reference_values:
            return
        for ref in policy.reference_values:
            if all(_norm(claim_at(appraisal, p)) == v for p, v in ref.claims.items()):
                add("reference_values", True, ref.label, ref.label, f"matches reference value {ref.label}")
                if vector.get("executables", ar4si.EXEC_UNRECOGNIZED) in (ar4si.NO_CLAIM, ar4si.EXEC_UNRECOGNIZED):
                    vector["executables"] = ar4si.EXEC_APPROVED_BOOT
                return
        # Name the claims that differ from the closest entry (fewest mismatches) so the operator sees why.
        best = min(
            policy.reference_values, key=lambda r: sum(_norm(claim_at(appraisal, p)) != v for p, v in r.claims.items())
        )
        differing = {
            p: _shown(claim_at(appraisal, p)) for p, v in best.claims.items() if _norm(claim_at(appraisal, p)) != v
        }
        add(
            "reference_values",
            False,
            {r.label: dict(r.claims) for r in policy.reference_values},
            differing,
            f"no reference value matches; closest is {best.label}, differing in {', '.join(sorted(differing))}",
        )

    @staticmethod
    def _debug(policy: Policy, appraisal: Appraisal, waived: list[str], add: Any) -> None:
        dbgstat = appraisal.attester_claims.get("dbgstat", _MISSING)
        debug = dbgstat not in (_MISSING, "disabled", "disabled-since-boot", "disabled-permanently")
        if policy.debug_allowed:
            if debug:
                waived.append("runtime-opaque")
            add(
                "debug",
                True,
                "allowed",
                dbgstat,
                "debug allowed by policy" + (": host can read guest memory" if debug else ""),
            )
        elif debug:
            add("debug", False, "disabled", dbgstat, "debug-enabled guest: the host can read its memory")
        elif dbgstat is not _MISSING:
            add("debug", True, "disabled", dbgstat, "debug disabled")

    def _tcb(self, policy: Policy, appraisal: Appraisal, now: datetime, add: Any) -> None:
        tcb = appraisal.attester_claims.get("tcb")
        tcb = tcb if isinstance(tcb, Mapping) else {}
        status = tcb.get("status", _MISSING)
        if policy.min_tcb_status is not None:
            limit = TCB_STATUSES.index(policy.min_tcb_status)
            ok = status in TCB_STATUSES and TCB_STATUSES.index(status) <= limit
            add(
                "min_tcb_status",
                ok,
                f"{policy.min_tcb_status} or better",
                status,
                "TCB status accepted" if ok else f"TCB status {_shown(status)} is below {policy.min_tcb_status}",
            )
        if policy.tcb_minimums:
            low = {
                k: _shown(tcb.get(k, _MISSING))
                for k, v in policy.tcb_minimums.items()
                if not isinstance(tcb.get(k), int) or tcb[k] < v
            }
            add(
                "tcb_minimums",
                not low,
                dict(policy.tcb_minimums),
                low or {k: tcb.get(k) for k in policy.tcb_minimums},
                "TCB components at or above the minimum" if not low else f"below minimum: {', '.join(sorted(low))}",
            )
        recovery = policy.tcb_recovery
        if recovery is None:
            return
        if recovery.accepted_advisories is not None:
            advisories = [a for a in tcb.get("advisory_ids") or () if isinstance(a, str)]
            unaccepted = sorted(set(advisories) - recovery.accepted_advisories)
            add(
                "tcb_recovery.accepted_advisories",
                not unaccepted,
                sorted(recovery.accepted_advisories),
                advisories,
                "all advisories accepted" if not unaccepted else f"unaccepted: {', '.join(unaccepted)}",
            )
        if recovery.min_tcb_date is not None:
            since = EvidenceTcbDate().current_level_since(appraisal)
            ok = since is not None and since >= recovery.min_tcb_date
            add(
                "tcb_recovery.min_tcb_date",
                ok,
                recovery.min_tcb_date.strftime("%Y-%m-%d"),
                tcb.get("date", _MISSING),
                "TCB date accepted" if ok else "TCB date missing or older than the minimum",
            )
        if recovery.grace_days is not None and status in _OUT_OF_DATE:
            since = self.tcb_currency.current_level_since(appraisal)
            deadline = since + timedelta(days=recovery.grace_days) if since is not None else None
            ok = deadline is not None and now <= deadline
            add(
                "tcb_recovery.grace_days",
                ok,
                f"{status} accepted for {recovery.grace_days} days",
                deadline.strftime("%Y-%m-%dT%H:%M:%SZ") if deadline else "(no TCB date)",
                "within the TCB-recovery grace period" if ok else "TCB-recovery grace period is over",
            )

    @staticmethod
    def _ak_keys(policy: Policy, appraisal: Appraisal, vector: dict[str, int], add: Any) -> None:
        digest = claim_at(appraisal, "verifier.ak_spki_sha256")
        label = policy.ak_keys.get(_norm(digest)) if isinstance(digest, str) else None
        add(
            "ak_keys",
            label is not None,
            sorted(policy.ak_keys.values()),
            digest,
            f"AK pinned as {label}" if label else "the attestation key is not pinned by the policy",
        )
        if label is not None and vector.get("instance-identity") in (None, ar4si.NO_CLAIM, ar4si.IDENTITY_UNRECOGNIZED):
            vector["instance-identity"] = ar4si.IDENTITY_TRUSTED

    @staticmethod
    def _age(policy: Policy, appraisal: Appraisal, now: datetime, add: Any) -> None:
        issued = appraisal.verifier_claims.get("evidence_issued_at")
        limit = policy.max_evidence_age_seconds
        when = None
        if isinstance(issued, str):
            try:
                when = datetime.fromisoformat(issued.replace("Z", "+00:00"))
            except ValueError:
                when = None
        age = (now - when).total_seconds() if when is not None else None
        ok = age is not None and age <= (limit or 0)
        add(
            "max_evidence_age_seconds",
            ok,
            limit,
            round(age) if age is not None else "(evidence carries no time)",
            "fresh enough" if ok else "evidence too old or without an issue time",
        )
