"""``attestation-broker verify``: verify an evidence file offline, as the server would.

Prints the JSON document on stdout (``ear_status``, the claims, or ``error``) and a one-line summary on stderr
(see :mod:`.output` for ``--quiet``, ``--format`` and the exit codes). The claims are those the server would
sign; a token is included only with ``--sign``, signed by the local broker key in the data directory — never
by a throw-away key passed off as the broker's.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attestation_broker.api.envelope import Envelope
from attestation_broker.audit.sinks import StdoutSink
from attestation_broker.binding import ExpectedBinding
from attestation_broker.bootstrap import build_broker, utc_now
from attestation_broker.cli.common import ensure_data_dir, error_doc, hex_bytes, parse_time, read_input
from attestation_broker.cli.output import (
    EXIT_CODES_HELP,
    add_output_options,
    claims_summary,
    emit,
    error_summary,
    exit_code_for_status,
    note,
    policy_refusal_summary,
)
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError, PolicyRejected
from attestation_broker.token.keys import KeyRing, local_keyring
from attestation_broker.token.signers import LocalSigner
from attestation_broker.trust.bundle import Bundle
from attestation_broker.trust.directory import DirectoryFetcher
from attestation_broker.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher
from attestation_broker.trust.upstreams import build_fetcher
from attestation_broker.usecases import RequestMeta

# The issuer named in claims the CLI did not sign with a deployed broker's key (no made-up http://…:8080).
CLI_ISSUER = "urn:attestation-broker:cli"


def _fetcher(args: argparse.Namespace, settings: Settings) -> tuple[Fetcher, Settings]:
    if args.collateral and Bundle.is_bundle(Path(args.collateral)):
        # A bundle (docs/collateral.md): the only collateral source, read-only; no socket is opened.
        return OfflineFetcher(), replace(settings, collateral_dir=args.collateral, offline=True)
    if args.collateral:
        return DirectoryFetcher(Path(args.collateral)), settings
    if args.offline:
        return OfflineFetcher(), settings
    return build_fetcher(settings, HttpFetcher()), settings


def _keyring(args: argparse.Namespace, settings: Settings) -> tuple[KeyRing, dict[str, Any]]:
    """The local broker key with ``--sign``; otherwise an ephemeral key whose token is discarded."""
    if args.sign:
        data_dir = ensure_data_dir(Path(args.data_dir) if args.data_dir else settings.data_dir, lambda m: note(args, m))
        return local_keyring(data_dir), {"data_dir": str(data_dir)}
    return KeyRing(LocalSigner.generate()), {
        "token_note": "no token: pass --sign to sign the claims with the local broker key (see --data-dir)"
    }


def _run(args: argparse.Namespace) -> tuple[dict[str, Any], str, int]:
    settings = Settings.from_env(
        offline=args.offline, policy_file=args.policy or "", ledger="off", cache="memory", revocation=args.revocation
    )
    if settings.issuer == Settings.issuer or not args.sign:
        settings = replace(settings, issuer=CLI_ISSUER)
    fetcher, settings = _fetcher(args, settings)
    evidence = read_input(args.evidence)
    extras = tuple(read_input(p) for p in args.extra)
    keyring, extra_doc = _keyring(args, settings)
    sink = StdoutSink(sys.stderr) if args.audit else _NullSink()
    as_of: datetime = args.now or datetime.now(UTC)
    broker = build_broker(
        replace(settings, nonce_secret="00" * 32),
        keyring=keyring,
        fetcher=fetcher,
        sink=sink,
        clock=utc_now,  # tokens: the real clock, so JWT libraries accept a --sign token
        evidence_clock=lambda: as_of,  # evidence, certificates and collateral: --now
    )
    binding = ExpectedBinding(args.nonce, args.user_data or b"") if args.nonce is not None else None
    result = broker.attest(
        args.kind,
        Envelope(evidence=evidence, extras=extras),
        RequestMeta(correlation_id="cli", route=f"cli:verify:{args.kind}"),
        offline_binding=binding,
    )
    status = str(result.claims["ear_status"])
    doc: dict[str, Any] = {"ear_status": status, "kind": args.kind, "claims": dict(result.claims), **extra_doc}
    if args.sign:
        doc["token"] = result.token
    return doc, claims_summary(args.kind, result.claims), exit_code_for_status(status)


class _NullSink:
    """The CLI's default audit sink: the decision is already the output (``--audit`` prints the record too)."""

    def emit(self, record: Any) -> None:
        return None


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        doc, summary, code = _run(args)
    except PolicyRejected as exc:
        # The issuance contract: a refused result is printed with its failed rules and the appraisal that
        # would have been signed, and never with a token (docs/policy.md).
        appraisal = dict(exc.appraisal or {})
        error = {**error_doc(exc), "failed_rules": [dict(r) for r in exc.failed_rules]}
        doc = {"ear_status": appraisal.get("ear_status"), "kind": args.kind, "error": error, "appraisal": appraisal}
        emit(args, doc, policy_refusal_summary(args.kind, error))
        return exc.exit_code
    except BrokerError as exc:
        error = error_doc(exc)
        emit(
            args,
            {"ear_status": None, "kind": args.kind, "error": error},
            error_summary(args.kind, error, exc.exit_code),
        )
        return exc.exit_code
    emit(args, doc, summary)
    return code


def _kinds() -> str:
    from attestation_broker.registry import default_registry

    return ", ".join(default_registry())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify",
        help="verify an evidence file offline under the policy; print the claims it would sign, or the refusal",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=f"kinds: {_kinds()}. Binary inputs may be given as hex or base64 text. "
        f"Envelope fields and nonce bindings per kind: docs/evidence.md. {EXIT_CODES_HELP}.",
    )
    verify.add_argument("kind", help="the evidence kind (listed below)")
    verify.add_argument("evidence", help="the evidence file (- for stdin)")
    verify.add_argument("extra", nargs="*", help="certificates, CRLs, runtime JSON, event logs, AK keys (by content)")
    verify.add_argument("--now", type=parse_time, help="verify the evidence as of this time (ISO 8601)")
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
    verify.add_argument("--sign", action="store_true", help="include a token signed by the local broker key")
    verify.add_argument("--data-dir", help="where the local broker key lives (default: BROKER_DATA_DIR)")
    verify.add_argument("--audit", action="store_true", help="also print the audit record (JSON) on stderr")
    add_output_options(verify)
    verify.set_defaults(func=cmd_verify)
