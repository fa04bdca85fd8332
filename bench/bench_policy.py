"""Benchmark of the policy engine: evaluation cost per kind beside that kind's verification cost, and the CEL
library choice (attestation_broker/policy/cel.py) measured in the same run.

Run: ``.venv/bin/python -m bench.bench_policy``. Prints, never asserts. Budget (issue 10): policy evaluation
under 50 µs per attestation.

- per kind, on a real vector verified offline: the kind's full ``verify`` (the peer), the engine with the
  built-in default policy, and with an operator policy of realistic size (a reference value, a claims
  constraint, TCB rule, two CEL conditions);
- CEL: one TDX-sized claim set and one expression, compiled once, evaluated with ``cel-expr-python`` (the
  engine's library) and with ``common-expression-language`` / ``cel-python`` when they are installed
  (they are not project dependencies; the module docstring of policy/cel.py records their figures).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from attestation_broker.appraisal import Appraisal
from attestation_broker.evidence.gcp_vtpm.kind import GcpVtpmVerifier
from attestation_broker.evidence.nitro.kind import NitroVerifier
from attestation_broker.evidence.snp.kind import SnpVerifier
from attestation_broker.evidence.tdx.kind import TdxVerifier
from attestation_broker.evidence.tpm.kind import TpmVerifier
from attestation_broker.policy import PolicyEngine, PolicySet, load_document
from attestation_broker.verifier import Submission, Verifier

from bench.harness import median_us, report
from tests.support.context import offline_context
from tests.support.vectors import vector

CLAIMS = {
    "tee": "tdx",
    "dbgstat": "disabled",
    "measurement": "ab" * 48,
    "tcb": {"status": "UpToDate", "date": "2025-01-01T00:00:00Z"},
    "tdx": {"rtmrs": ["00" * 48] * 4, "attributes": {"debug": False}},
}
EXPR = (
    'claims.dbgstat == "disabled" && claims.tcb.status in ["UpToDate", "SWHardeningNeeded"]'
    " && size(claims.tdx.rtmrs) == 4"
)


def _cases() -> list[tuple[str, Verifier, Submission, datetime, dict[str, Any]]]:
    """(kind, verifier, submission, now, operator rules) on real vectors."""
    from tests.unit.nitro.support import NONDEBUG
    from tests.unit.tdx.support import NOW_D6, dcap_json, quote_bytes
    from tests.unit.tpm.helpers import NOW as TPM_NOW
    from tests.unit.tpm.helpers import azure_bincode

    snp = vector("snp/trustee-milan-v2/test-report.bin")
    crl = vector("roots/amd/amd_milan_vcek_crl.pem")
    az = azure_bincode(vector("tpm/azure-vtpm-quote-2024-02.bincode"))
    ak = vector("tpm/azure-vtpm-quote-2024-02.akpub.pem")
    pcrs = json.dumps({"sha256": {str(i): v.hex() for i, v in az.pcrs.items()}}).encode()
    cond = [
        {"name": "not-debug", "expr": 'claims.dbgstat != "enabled"'},
        {"name": "hardware", "expr": 'vector["hardware"] <= 32'},
    ]
    return [
        (
            "snp",
            SnpVerifier(),
            Submission(snp, (vector("snp/trustee-milan-v2/test-vcek.der"), crl)),
            datetime(2025, 6, 1, tzinfo=UTC),
            {
                "reference_values": [{"label": "w", "claims": {"measurement": "00" * 48}}],
                "claims": {"snp.vmpl": [0, 1]},
                "tcb_minimums": {"snp": 8},
                "conditions": [cond[0], {"name": "vmpl", "expr": "claims.snp.vmpl <= 1"}],
            },
        ),
        (
            "tdx",
            TdxVerifier(),
            Submission(quote_bytes("D6"), fields={"collateral": json.loads(dcap_json("D6"))}),
            NOW_D6,
            {
                "reference_values": [{"label": "td", "claims": {"tdx.mrtd": "00" * 48, "tdx.rtmrs.0": "00" * 48}}],
                "min_tcb_status": "SWHardeningNeeded",
                "tcb_recovery": {"grace_days": 30, "accepted_advisories": ["INTEL-SA-00837"]},
                "conditions": cond,
            },
        ),
        (
            "nitro",
            NitroVerifier(),
            Submission(vector("nitro/evervault-nondebug-2022-10-13.cose")),
            NONDEBUG.now,
            {
                "reference_values": [{"label": "e", "claims": {"nitro.pcrs.0": "00" * 48}}],
                "max_evidence_age_seconds": 300,
                "conditions": cond,
            },
        ),
        (
            "tpm",
            TpmVerifier(),
            Submission(az.message, extras=(az.signature, ak, pcrs)),
            TPM_NOW,
            {
                "ak_keys": [{"label": "k", "sha256": "00" * 32}],
                "reference_values": [{"label": "p", "claims": {"tpm.pcrs.sha256.0": "00" * 32}}],
                "conditions": cond,
            },
        ),
        (
            "gcp-vtpm",
            GcpVtpmVerifier(),
            Submission(
                vector("gcp/gce-cos-85-nonce9009.attestation.pb"), (vector("gcp/gce-ca-tpm_ek_intermediate_2.crt"),)
            ),
            datetime(2026, 11, 22, tzinfo=UTC),
            {"claims": {"instance.project": ["p"], "instance.zone": ["z"]}, "conditions": cond},
        ),
    ]


def bench_kinds() -> None:
    engine = PolicyEngine()
    for kind, verifier, submission, now, rules in _cases():
        ctx = offline_context(now)
        facts: Appraisal = verifier.verify(submission, ctx)
        operator = load_document(
            json.dumps({"version": 1, "policies": {"bench": {"kinds": [kind], "rules": rules}}}), "bench"
        ).for_kind(kind)
        default = PolicySet({}).for_kind(kind)
        report(
            f"policy engine, {kind} (real vector)",
            [
                (f"{kind} verify (the peer)", median_us(lambda v=verifier, s=submission, c=ctx: v.verify(s, c))),
                ("evaluate: built-in default policy", median_us(_eval(engine, default, facts, now), runs=2000)),
                (
                    f"evaluate: operator policy ({len(rules)} rule groups)",
                    median_us(_eval(engine, operator, facts, now), runs=2000),
                ),
            ],
            floor=f"{kind} verify (the peer)",
        )


def _eval(engine: PolicyEngine, policy: Any, facts: Appraisal, now: datetime) -> Callable[[], object]:
    return lambda: engine.evaluate(policy, facts, now=now, nonce_bound=False)


def bench_cel() -> None:
    from attestation_broker.policy import cel

    condition = cel.Condition.compile("bench", EXPR)
    now = datetime.now(UTC)
    rows = [
        (
            "cel-expr-python (engine): bind + eval",
            median_us(lambda: cel.evaluate(condition, cel.activation("tdx", CLAIMS, {}, {}, now)), runs=5000),
        )
    ]
    if importlib.util.find_spec("cel") is not None:
        import cel as rust_cel  # common-expression-language

        program = rust_cel.compile(EXPR)
        rows.append(("common-expression-language: execute", median_us(lambda: program.execute({"claims": CLAIMS}))))
    else:
        rows.append(("common-expression-language: not installed (recorded ~118 µs)", 0.0))
    if importlib.util.find_spec("celpy") is not None:
        import celpy

        env = celpy.Environment()
        prg = env.program(env.compile(EXPR))
        rows.append(
            (
                "cel-python: json_to_cel + evaluate",
                median_us(lambda: prg.evaluate({"claims": celpy.json_to_cel(CLAIMS)}), runs=200),
            )
        )
    else:
        rows.append(("cel-python: not installed (recorded ~1700 µs)", 0.0))
    print("== CEL libraries, one TDX-sized claim set, one expression compiled once")
    for label, us in rows:
        print(f"  {label:<60} {us:10.1f} µs" if us else f"  {label}")


def main() -> None:
    bench_cel()
    bench_kinds()


if __name__ == "__main__":
    main()
