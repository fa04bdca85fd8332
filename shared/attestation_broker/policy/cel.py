"""Free-form policy conditions in the Common Expression Language (CEL, https://cel.dev; the language of
Google Workload Identity Federation attribute conditions, Confidential Space and Kubernetes
ValidatingAdmissionPolicy).

Library choice, measured with ``make bench`` (bench/bench_policy.py; one TDX-sized claim set, expression
``claims.dbgstat == "disabled" && claims.tcb.status in [...] && size(claims.tdx.rtmrs) == 4``, compiled once):

====================================  ==============  =====================================================
library                               µs / eval       maintenance
====================================  ==============  =====================================================
``cel-expr-python`` 0.1.3 (chosen)    ~10             Google's CEL team (github.com/cel-expr), the cel-cpp
                                                      runtime; type-checks at compile; no dependencies
``common-expression-language`` 0.10   ~24             Rust ``cel`` crate bindings; pulls typer/rich CLI deps;
                                                      no type check at compile
``cel-python`` 0.5                    ~470            pure Python; json_to_cel conversion per call dominates
====================================  ==============  =====================================================

(Medians of one ``make bench`` run on the CI-class machine; the bench prints the figures of every run.) The
cost of a CEL evaluation is mostly converting the claims into CEL values, so a condition's activation holds
only the top-level claims it names (``claims.snp`` → only ``snp``), which keeps a vTPM's large PCR and
event-log claims out of a condition about the instance. Expressions are compiled (parsed and type-checked)
once when the policy document is loaded; a syntax or type error is a configuration error then, never a
request-time failure. Variables: ``claims`` (attester claims), ``verifier`` (verifier
claims), ``vector`` (trustworthiness vector), ``kind`` (evidence kind) and ``now`` (timestamp).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from cel_expr_python import cel


@cache
def _env() -> Any:
    dyn_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    return cel.NewEnv(
        variables={
            "claims": dyn_map,
            "verifier": dyn_map,
            "vector": cel.Type.Map(cel.Type.STRING, cel.Type.INT),
            "kind": cel.Type.STRING,
            "now": cel.Type.TIMESTAMP,
        }
    )


class CelCompileError(ValueError):
    """A condition does not parse or type-check."""


_MAPS = ("claims", "verifier")
_KEYED = re.compile(r'\b(claims|verifier)\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*"([^"]+)"\s*\])')


def _needs(source: str) -> dict[str, frozenset[str] | None]:
    """Top-level keys of ``claims`` / ``verifier`` an expression reads; None: it uses the whole map."""
    needs: dict[str, frozenset[str] | None] = {}
    keyed = list(_KEYED.finditer(source))
    for var in _MAPS:
        keys = frozenset((m.group(2) or m.group(3)) for m in keyed if m.group(1) == var)
        whole = len(re.findall(rf"\b{var}\b", source)) > sum(1 for m in keyed if m.group(1) == var)
        needs[var] = None if whole else keys
    return needs


@dataclass(frozen=True)
class Condition:
    name: str
    source: str
    program: Any
    needs: Mapping[str, frozenset[str] | None]

    @classmethod
    def compile(cls, name: str, source: str) -> Condition:
        try:
            program = _env().compile(source)
        except RuntimeError as exc:
            # The message carries the position and the offending token; the expression is operator input.
            raise CelCompileError(str(exc).replace("INVALID_ARGUMENT: ", "").strip()) from None
        kind = program.return_type().name().lower()
        if kind not in ("bool", "dyn"):
            raise CelCompileError(f"condition must evaluate to a bool, not {kind}")
        return cls(name, source, program, _needs(source))


def _subset(source: Mapping[str, Any], var: str, conditions: Iterable[Condition]) -> dict[str, Any]:
    keys: set[str] = set()
    for condition in conditions:
        needed = condition.needs.get(var)
        if needed is None:
            return dict(source)
        keys.update(needed)
    return {k: source[k] for k in keys if k in source}


def activation(
    kind: str,
    claims: Mapping[str, Any],
    verifier: Mapping[str, Any],
    vector: Mapping[str, int],
    now: datetime,
    conditions: Iterable[Condition] | None = None,
) -> Any:
    """Bind the variables once per attestation; every condition then evaluates against the same activation.
    With ``conditions``, only the top-level claims they read are converted (absent keys stay absent)."""
    if conditions is not None:
        conditions = tuple(conditions)
        claims, verifier = _subset(claims, "claims", conditions), _subset(verifier, "verifier", conditions)
    data = {"claims": dict(claims), "verifier": dict(verifier), "vector": dict(vector), "kind": kind, "now": now}
    return _env().Activation(data=data)


def evaluate(condition: Condition, bound: Any) -> tuple[bool, str]:
    """(passed, detail). A runtime error (e.g. a missing claim) fails the condition with the error text."""
    value = condition.program.eval(bound)
    if value.type() == cel.Type.BOOL:
        result = bool(value.value())
        return result, "true" if result else "false"
    if value.type() == cel.Type.ERROR:
        return False, f"evaluation error: {value.value()}"[:300]
    return False, f"not a bool: {value.type().name()}"
