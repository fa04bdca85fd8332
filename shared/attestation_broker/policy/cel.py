"""Free-form policy conditions in the Common Expression Language (CEL, https://cel.dev; the language of
Google Workload Identity Federation attribute conditions, Confidential Space and Kubernetes
ValidatingAdmissionPolicy).

Library choice, measured with ``make bench`` (bench/bench_policy.py; one TDX-sized claim set, expression
``claims.dbgstat == "disabled" && claims.tcb.status in [...] && size(claims.tdx.rtmrs) == 4``, compiled once):

====================================  ==============  =====================================================
library                               µs / eval       maintenance
====================================  ==============  =====================================================
``cel-expr-python`` 0.1.3 (chosen)    ~22             Google's CEL team (github.com/cel-expr), the cel-cpp
                                                      runtime behind Kubernetes-style CEL, no dependencies
``common-expression-language`` 0.10   ~118            Rust ``cel`` crate bindings; pulls typer/rich CLI deps
``cel-python`` 0.5                    ~1700           pure Python; json_to_cel conversion per call dominates
====================================  ==============  =====================================================

Only ``cel-expr-python`` stays inside the 50 µs per-attestation evaluation budget. Expressions are compiled
(parsed and type-checked) once when the policy document is loaded; a syntax or type error is a configuration
error then, never a request-time failure. Variables: ``claims`` (attester claims), ``verifier`` (verifier
claims), ``vector`` (trustworthiness vector), ``kind`` (evidence kind) and ``now`` (timestamp).
"""

from __future__ import annotations

from collections.abc import Mapping
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


@dataclass(frozen=True)
class Condition:
    name: str
    source: str
    program: Any

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
        return cls(name, source, program)


def activation(
    kind: str, claims: Mapping[str, Any], verifier: Mapping[str, Any], vector: Mapping[str, int], now: datetime
) -> Any:
    """Bind the variables once per attestation; every condition then evaluates against the same activation."""
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
