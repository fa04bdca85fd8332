"""``attestation-broker policy``: write, check and dry-run appraisal policies (docs/policy.md).

- ``policy check FILE``: validate a document against the published JSON Schema and compile its expressions;
  every problem is listed with the valid keys named; exit 0 valid, 2 not.
- ``policy init KIND EVIDENCE [EXTRA...]``: verify one real piece of evidence and print a document whose one
  policy accepts exactly that workload (its measurements as a reference value, debug off, its TCB as the
  minimum, its AK pinned for TPM quotes) — the way ``keylime-policy create`` or the Trustee reference-value
  tools bootstrap golden values.
- ``policy test FILE KIND EVIDENCE [EXTRA...]``: a dry run showing, rule by rule, what passed and failed and
  why, and whether the broker would issue a token; exit 0 token, 1 POLICY_REJECTED, 2 unusable input.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from attestation_broker.appraisal import TCB_STATUSES, Appraisal
from attestation_broker.bootstrap import build_broker
from attestation_broker.cli.common import error_doc, parse_time, print_json, read_submission_files
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.policy import PolicyDocumentError, PolicyEngine, load_document, policy_id
from attestation_broker.policy.document import parse_text, problems_in
from attestation_broker.registry import default_registry
from attestation_broker.token.keys import KeyRing
from attestation_broker.token.signers import LocalSigner
from attestation_broker.trust.directory import DirectoryFetcher
from attestation_broker.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher
from attestation_broker.verifier import Submission, VerifyContext

# Claims that identify the workload per kind, pinned by ``policy init`` (those present in the evidence).
WORKLOAD_CLAIMS: Mapping[str, tuple[str, ...]] = {
    "snp": ("measurement", "snp.host_data", "snp.id_key_digest"),
    "tdx": ("tdx.mrtd", "tdx.rtmrs.0", "tdx.rtmrs.1", "tdx.rtmrs.2", "tdx.rtmrs.3", "tdx.mrconfigid"),
    "nitro": ("nitro.pcrs.0", "nitro.pcrs.1", "nitro.pcrs.2", "nitro.pcrs.8"),
    "gcp-token": ("measurement",),
    "azure-token": ("measurement",),
    "azure-vtpm": ("measurement",),
    "gcp-vtpm": ("measurement",),
}
# TPM-based kinds also pin their boot PCRs (0-7: firmware, boot loader, Secure Boot state).
BOOT_PCRS = tuple(range(8))


def _facts(args: argparse.Namespace) -> tuple[Appraisal, datetime] | int:
    """Verify the evidence exactly as the server would, without any policy: the kind's facts."""
    now: datetime = args.now or datetime.now(UTC)
    settings = Settings.from_env(offline=args.offline, ledger="off", cache="memory")
    fetcher: Fetcher
    if args.collateral:
        fetcher = DirectoryFetcher(Path(args.collateral))
    elif args.offline:
        fetcher = OfflineFetcher()
    else:
        fetcher = HttpFetcher()
    files = read_submission_files(args)
    if files is None:
        return 2
    evidence, extras = files
    try:
        broker = build_broker(
            replace(settings, nonce_secret="00" * 32, policy_file=""),
            keyring=KeyRing(LocalSigner.generate()),
            fetcher=fetcher,
            clock=lambda: now,
        )
        verifier = broker.registry.require(args.kind)
        ctx = VerifyContext(now=now, collateral=broker.collateral, settings=broker.settings)
        return verifier.verify(Submission(evidence, extras), ctx), now
    except BrokerError as exc:
        print_json({"kind": args.kind, "error": error_doc(exc)})
        return exc.exit_code


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    node: Any = claims
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def initial_policy(kind: str, appraisal: Appraisal, name: str) -> dict[str, Any]:
    """The rules that accept exactly this workload."""
    claims = appraisal.attester_claims
    pinned: dict[str, Any] = {}
    for path in WORKLOAD_CLAIMS.get(kind, ("measurement",)):
        value = _claim(claims, path)
        if isinstance(value, str | int | bool):
            pinned[path] = value
    tpm = claims.get("tpm")
    pcrs = tpm.get("pcrs") if isinstance(tpm, Mapping) else None
    if isinstance(pcrs, Mapping):
        bank = "sha256" if "sha256" in pcrs else next(iter(pcrs), None)
        values = pcrs.get(bank, {}) if bank else {}
        for index in BOOT_PCRS:
            if str(index) in values:
                pinned[f"tpm.pcrs.{bank}.{index}"] = values[str(index)]
    rules: dict[str, Any] = {"debug": "forbidden"}
    if pinned:
        rules["reference_values"] = [{"label": name, "claims": pinned}]
    tcb = claims.get("tcb")
    if isinstance(tcb, Mapping):
        if tcb.get("status") in TCB_STATUSES and tcb.get("status") != "Revoked":
            rules["min_tcb_status"] = tcb["status"]
        components = {k: v for k, v in tcb.items() if k in ("bootloader", "tee", "snp", "microcode", "fmc")}
        if components and kind in ("snp", "azure-vtpm", "gcp-vtpm") and claims.get("tee") == "sev-snp":
            rules["tcb_minimums"] = components
    ak = appraisal.verifier_claims.get("ak_spki_sha256")
    if kind == "tpm" and isinstance(ak, str):
        rules["ak_keys"] = [{"label": name, "sha256": ak}]
    return {"version": 1, "policies": {name: {"kinds": [kind], "rules": rules}}}


def cmd_init(args: argparse.Namespace) -> int:
    facts = _facts(args)
    if isinstance(facts, int):
        return facts
    appraisal, _ = facts
    name = args.name or f"{args.kind}-workload"
    doc = initial_policy(args.kind, appraisal, name)
    body = doc["policies"][name]
    header = (
        f"# attestation-broker policy init {args.kind} {Path(args.evidence).name}\n"
        f"# policy id: {policy_id(name, body)}\n"
    )
    print(header + yaml.safe_dump(doc, sort_keys=False, width=200), end="")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print_json({"file": args.file, "valid": False, "problems": [f"unreadable: {type(exc).__name__}"]})
        return 2
    try:
        doc = parse_text(text, args.file)
        problems = problems_in(doc, known_kinds=default_registry())
    except PolicyDocumentError as exc:
        problems = exc.problems
    if problems:
        print_json({"file": args.file, "valid": False, "problems": problems})
        return 2
    policies = load_document(text, args.file, default_registry())
    ids = {p.name: p.id for p in policies.by_kind.values()}
    print_json(
        {"file": args.file, "valid": True, "policies": ids, "kinds": {k: p.name for k, p in policies.by_kind.items()}}
    )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    try:
        policies = load_document(Path(args.file).read_text(encoding="utf-8"), args.file, default_registry())
    except (OSError, UnicodeDecodeError) as exc:
        print_json({"file": args.file, "error": {"code": "UNREADABLE_FILE", "detail": type(exc).__name__}})
        return 2
    except PolicyDocumentError as exc:
        print_json({"file": args.file, "valid": False, "problems": exc.problems})
        return 2
    facts = _facts(args)
    if isinstance(facts, int):
        return facts
    appraisal, now = facts
    policy = policies.for_kind(args.kind)
    decision = PolicyEngine().evaluate(policy, appraisal, now=now, nonce_bound=args.nonce_bound)
    failed = [r.rule for r in decision.failed]
    print_json(
        {
            "kind": args.kind,
            "policy": policy.id,
            "builtin": policy.builtin,
            "rules": [{**r.as_dict(), "passed": r.passed} for r in decision.results],
            "failed_rules": failed,
            "ear_status": decision.status.value,
            "trustworthiness_vector": dict(decision.appraisal.trustworthiness_vector),
            "decision": "POLICY_REJECTED" if failed else "token",
        }
    )
    return 1 if failed else 0


def _evidence_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind")
    parser.add_argument("evidence")
    parser.add_argument("extra", nargs="*", help="certificates, runtime JSON, event logs, AK keys (by content)")
    parser.add_argument("--now", type=parse_time, help="pin the clock (ISO 8601)")
    parser.add_argument("--collateral", help="directory of recorded vendor collateral")
    parser.add_argument("--offline", action="store_true", help="open no socket")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="write, check and dry-run appraisal policies (docs/policy.md)")
    actions = policy.add_subparsers(dest="policy_command", required=True)
    check = actions.add_parser("check", help="validate a policy document; every problem listed (exit 2)")
    check.add_argument("file")
    check.set_defaults(func=cmd_check)
    init = actions.add_parser("init", help="print a policy accepting exactly the workload of one real evidence")
    _evidence_args(init)
    init.add_argument("--name", help="policy name (default: <kind>-workload)")
    init.set_defaults(func=cmd_init)
    test = actions.add_parser("test", help="dry-run a policy on evidence, rule by rule")
    test.add_argument("file")
    _evidence_args(test)
    test.add_argument("--nonce-bound", action="store_true", help="treat the evidence as bound to a broker nonce")
    test.set_defaults(func=cmd_test)
