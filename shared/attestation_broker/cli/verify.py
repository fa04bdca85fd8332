"""``attestation-broker verify``: verify an evidence file offline, as the server would."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from attestation_broker.api.envelope import Envelope
from attestation_broker.audit.sinks import StdoutSink
from attestation_broker.binding import ExpectedBinding
from attestation_broker.bootstrap import build_broker
from attestation_broker.cli.common import error_doc, hex_bytes, parse_time, print_json
from attestation_broker.config import Settings
from attestation_broker.errors import CONFIG_INVALID, BrokerError, PolicyRejected
from attestation_broker.token.keys import KeyRing
from attestation_broker.token.signers import LocalSigner
from attestation_broker.trust.bundle import Bundle
from attestation_broker.trust.directory import DirectoryFetcher
from attestation_broker.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher
from attestation_broker.trust.upstreams import build_fetcher
from attestation_broker.usecases import RequestMeta


def cmd_verify(args: argparse.Namespace) -> int:
    now: datetime = args.now or datetime.now(UTC)
    settings = Settings.from_env(
        offline=args.offline, policy_file=args.policy or "", ledger="off", cache="memory", revocation=args.revocation
    )
    fetcher: Fetcher
    try:
        if args.collateral and Bundle.is_bundle(Path(args.collateral)):
            # A bundle (docs/collateral.md): the only collateral source, read-only; no socket is opened.
            settings = replace(settings, collateral_dir=args.collateral, offline=True)
            fetcher = OfflineFetcher()
        elif args.collateral:
            fetcher = DirectoryFetcher(Path(args.collateral))
        elif args.offline:
            fetcher = OfflineFetcher()
        else:
            fetcher = build_fetcher(settings, HttpFetcher())
    except BrokerError as exc:
        print_json({"ear_status": None, "kind": args.kind, "error": error_doc(exc)})
        return exc.exit_code
    try:
        evidence = Path(args.evidence).read_bytes()
        extras = tuple(Path(p).read_bytes() for p in args.extra)
    except OSError as exc:
        print_json({"ear_status": None, "error": {"code": "UNREADABLE_FILE", "status": 400, "detail": exc.strerror}})
        return 2
    try:
        broker = build_broker(
            replace(settings, nonce_secret="00" * 32),
            keyring=KeyRing(LocalSigner.generate()),  # ephemeral: the CLI's token is for inspection
            fetcher=fetcher,
            sink=StdoutSink(sys.stderr),
            clock=lambda: now,
        )
        binding = ExpectedBinding(args.nonce, args.user_data or b"") if args.nonce is not None else None
        result = broker.attest(
            args.kind,
            Envelope(evidence=evidence, extras=extras),
            RequestMeta(correlation_id="cli", route=f"cli:verify:{args.kind}"),
            offline_binding=binding,
        )
    except PolicyRejected as exc:
        # The issuance contract: a refused result is printed with its failed rules and the appraisal that
        # would have been signed, and never with a token (docs/policy.md).
        appraisal = dict(exc.appraisal or {})
        print_json(
            {
                "ear_status": appraisal.get("ear_status"),
                "kind": args.kind,
                "error": {**error_doc(exc), "failed_rules": [dict(r) for r in exc.failed_rules]},
                "appraisal": appraisal,
            }
        )
        return exc.exit_code
    except BrokerError as exc:
        print_json({"ear_status": None, "kind": args.kind, "error": error_doc(exc)})
        # A broken policy document is unusable input for the CLI (the server refuses to start instead).
        return 2 if exc.code is CONFIG_INVALID else exc.exit_code
    status = str(result.claims["ear_status"])
    print_json({"ear_status": status, "kind": args.kind, "claims": dict(result.claims), "token": result.token})
    return 0 if status in ("affirming", "warning") else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify", help="verify an evidence file offline under the policy; print claims and a token, or the refusal"
    )
    verify.add_argument("kind")
    verify.add_argument("evidence")
    verify.add_argument("extra", nargs="*", help="certificates, runtime JSON, event logs, AK keys (by content)")
    verify.add_argument("--now", type=parse_time, help="pin the clock (ISO 8601)")
    verify.add_argument("--nonce", type=hex_bytes, help="raw nonce bytes (hex) the evidence must bind")
    verify.add_argument("--user-data", type=hex_bytes, help="user data (hex) bound with the nonce")
    verify.add_argument("--policy", help="policy document (YAML or JSON, docs/policy.md); default: built-in")
    verify.add_argument(
        "--collateral",
        help="a collateral bundle (collateral fetch/import) or a directory of recorded vendor collateral",
    )
    verify.add_argument("--offline", action="store_true", help="open no socket")
    verify.add_argument(
        "--revocation",
        choices=("check", "skip"),
        default="check",
        help="skip: verify without CRLs/OCSP (recorded in the verifier claims; the result is at best a warning)",
    )
    verify.set_defaults(func=cmd_verify)
