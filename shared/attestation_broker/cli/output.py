"""What the CLI prints: the JSON document on stdout, a one-line human summary on stderr, and exit codes.

Every command that judges evidence or a token goes through :func:`emit`, so the summary line, ``--quiet``
and ``--format json|text`` behave the same everywhere. Exit codes (also in ``errors.py`` and the README):

====  =========================================================================================
0     verified (affirming or warning)
1     refused: verification or policy failure, or a contraindicated result
2     unusable input or configuration (malformed evidence, unreadable file, unknown kind, bad settings)
3     could not decide: vendor collateral, signer or ledger unavailable (retry, or ``--collateral DIR``)
====  =========================================================================================
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

EXIT_VERIFIED = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2
EXIT_UNDECIDED = 3

EXIT_CODES_HELP = (
    "exit status: 0 verified (affirming or warning); 1 refused (verification or policy failure, or "
    "contraindicated); 2 unusable input or configuration; 3 could not decide (collateral, signer or ledger "
    "unavailable: retry, or pass --collateral DIR)"
)

_ACCEPTED = ("affirming", "warning")
_VERDICT_OF_EXIT = {EXIT_REFUSED: "refused", EXIT_UNUSABLE: "unusable input", EXIT_UNDECIDED: "could not decide"}


def add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("json", "text"),
        default="json",
        help="json (default): the JSON document on stdout and a one-line summary on stderr; text: a readable "
        "report on stdout",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")


def exit_code_for_status(ear_status: str | None) -> int:
    return EXIT_VERIFIED if ear_status in _ACCEPTED else EXIT_REFUSED


def _short(value: Any, keep: int = 8) -> str:
    text = str(value)
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


def _why(submod: Mapping[str, Any]) -> str:
    findings = list(submod.get("ear_verifier_claims", {}).get("findings") or [])
    if findings:
        return "; ".join(str(f) for f in findings[:2]) + (f" (+{len(findings) - 2} more)" if len(findings) > 2 else "")
    vector = submod.get("ear_trustworthiness_vector") or {}
    weak = [f"{claim}={value}" for claim, value in sorted(vector.items()) if isinstance(value, int) and value >= 32]
    if weak:
        return "trustworthiness claims below affirming: " + ", ".join(weak)
    return "every trustworthiness claim affirming"


def claims_summary(kind: str, claims: Mapping[str, Any]) -> str:
    """``kind: verdict — measurement …, tcb …, policy …, why: …`` for a verified result (any EAR status)."""
    status = str(claims.get("ear_status"))
    submods = claims.get("submods") or {}
    submod: Mapping[str, Any] = submods.get(kind) or (next(iter(submods.values())) if submods else {})
    attester = submod.get("ear_attester_claims") or {}
    parts = [f"{attester.get('tee', '?')}/{attester.get('platform', '?')}"]
    if attester.get("measurement"):
        parts.append(f"measurement {_short(attester['measurement'])}")
    tcb = attester.get("tcb")
    if isinstance(tcb, Mapping) and tcb.get("status"):
        parts.append(f"tcb {tcb['status']}")
    policies = submod.get("ear_appraisal_policy_ids") or []
    parts.append("policy " + (", ".join(str(p) for p in policies) if policies else "none"))
    verdict = status if status in _ACCEPTED else f"{status} (refused)"
    return f"{kind}: {verdict} — {', '.join(parts)} — why: {_why(submod)}"


def error_summary(kind: str, error: Mapping[str, Any], exit_code: int) -> str:
    verdict = _VERDICT_OF_EXIT.get(exit_code, "error")
    hint = ""
    if exit_code == EXIT_UNDECIDED:
        hint = " (retry later, or pass recorded collateral with --collateral DIR)"
    return f"{kind}: {verdict} — {error.get('code')}: {error.get('detail')}{hint}"


def policy_refusal_summary(kind: str, error: Mapping[str, Any]) -> str:
    """``kind: refused — POLICY_REJECTED: detail — failed: policy/rule (expected …, found …)``."""
    failed = []
    for rule in list(error.get("failed_rules") or [])[:3]:
        what = "/".join(str(rule[k]) for k in ("policy", "rule") if rule.get(k))
        if "expected" in rule or "actual" in rule:
            what += f" (expected {rule.get('expected')}, found {rule.get('actual')})"
        failed.append(what)
    tail = f" — failed: {'; '.join(failed)}" if failed else ""
    return f"{kind}: refused — {error.get('code')}: {error.get('detail')}{tail}"


def _text_report(doc: Mapping[str, Any], summary: str) -> str:
    lines = [summary]
    claims = doc.get("claims")
    if isinstance(claims, Mapping):
        for kind, submod in (claims.get("submods") or {}).items():
            attester = submod.get("ear_attester_claims") or {}
            lines.append(f"  [{kind}] ear_status {submod.get('ear_status')}")
            for key in ("tee", "platform", "measurement", "dbgstat", "report_data"):
                if key in attester:
                    lines.append(f"    {key:<12} {attester[key]}")
            tcb = attester.get("tcb")
            if isinstance(tcb, Mapping):
                lines.append(f"    {'tcb':<12} {tcb.get('status')}")
            vector = submod.get("ear_trustworthiness_vector") or {}
            lines.append("    vector       " + ", ".join(f"{k}={v}" for k, v in sorted(vector.items())))
            for finding in submod.get("ear_verifier_claims", {}).get("findings") or []:
                lines.append(f"    finding      {finding}")
    for key in ("token_note", "data_dir"):
        if doc.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {doc[key]}")
    if doc.get("token"):
        lines.append(f"  token: {doc['token']}")
    return "\n".join(lines) + "\n"


def emit(args: argparse.Namespace, doc: Mapping[str, Any], summary: str) -> None:
    """Print ``doc`` in the requested format; the summary goes to stderr in JSON mode (unless ``--quiet``)."""
    if getattr(args, "format", "json") == "text":
        sys.stdout.write(_text_report(doc, summary))
        return
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if not getattr(args, "quiet", False):
        sys.stderr.write(summary + "\n")


def note(args: argparse.Namespace, message: str) -> None:
    """A side remark for people (e.g. "created data directory …"): stderr, silenced by ``--quiet``."""
    if not getattr(args, "quiet", False):
        sys.stderr.write(f"attestation-broker: {message}\n")
