"""``attestation-broker``: serve, verify evidence files offline, verify broker tokens, rotate keys.

Exit codes of ``verify`` and ``token verify`` (DESIGN.md §5): 0 verified (affirming or warning),
1 verification or policy failure (or a contraindicated result), 2 unusable input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.api.envelope import Envelope
from shared.app import build_broker, utc_now
from shared.audit.sinks import StdoutSink
from shared.binding import ExpectedBinding
from shared.config import Settings
from shared.errors import CATALOGUE, BrokerError
from shared.service import RequestMeta
from shared.token.keys import KeyRing, local_keyring, rotate_local
from shared.token.signers import LocalSigner
from shared.trust.directory import DirectoryFetcher
from shared.trust.fetch import Fetcher, HttpFetcher, OfflineFetcher


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected hex") from None


def _print(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _error_doc(exc: BrokerError) -> dict[str, Any]:
    return {"code": exc.code.name, "status": exc.status, "detail": exc.detail}


def cmd_serve(args: argparse.Namespace) -> int:
    from shared import logs
    from shared.api.routes import Api
    from shared.server import serve

    logs.configure()
    settings = Settings.from_env()
    if args.data_dir:
        settings = replace(settings, data_dir=Path(args.data_dir))
    if settings.issuer == Settings.issuer:
        settings = replace(settings, issuer=f"http://{args.host}:{args.port}")
    clock = utc_now
    if settings.fixed_time:
        pinned = _parse_time(settings.fixed_time)
        logging.getLogger("attestation_broker").warning("clock pinned to %s (BROKER_FIXED_TIME)", pinned.isoformat())
        clock = lambda: pinned  # noqa: E731
    serve(Api(build_broker(settings, clock=clock)), host=args.host, port=args.port, threads=args.threads)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    now: datetime = args.now or datetime.now(UTC)
    settings = Settings.from_env(offline=args.offline, policy_file=args.policy or "", ledger="off", cache="memory")
    fetcher: Fetcher
    if args.collateral:
        fetcher = DirectoryFetcher(Path(args.collateral))
    elif args.offline:
        fetcher = OfflineFetcher()
    else:
        fetcher = HttpFetcher()
    try:
        evidence = Path(args.evidence).read_bytes()
        extras = tuple(Path(p).read_bytes() for p in args.extra)
    except OSError as exc:
        _print({"ear_status": None, "error": {"code": "UNREADABLE_FILE", "status": 400, "detail": exc.strerror}})
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
    except BrokerError as exc:
        _print({"ear_status": None, "kind": args.kind, "error": _error_doc(exc)})
        return exc.exit_code
    status = str(result.claims["ear_status"])
    _print({"ear_status": status, "kind": args.kind, "claims": dict(result.claims), "token": result.token})
    return 0 if status in ("affirming", "warning") else 1


def cmd_token_verify(args: argparse.Namespace) -> int:
    from shared.token.ear import TokenService

    raw = args.token
    if raw == "-":
        raw = sys.stdin.read()
    elif raw.count(".") != 2 and len(raw) < 4096 and Path(raw).is_file():
        raw = Path(raw).read_text()
    settings = Settings.from_env()
    keyring: KeyRing
    if args.jwks:
        try:
            keys = json.loads(Path(args.jwks).read_text())["keys"]
        except (OSError, ValueError, KeyError):
            _print({"valid": False, "error": {"code": "CONFIG_INVALID", "status": 500, "detail": "unreadable JWKS"}})
            return 2
        keyring = _JwksKeyRing(keys)
    else:
        keyring = local_keyring(Path(args.data_dir) if args.data_dir else settings.data_dir)
    service = TokenService(
        keyring,
        issuer=args.issuer or settings.issuer,
        audience=args.audience or settings.token_audience,
        ttl=timedelta(seconds=settings.token_ttl_seconds),
    )
    try:
        claims = service.verify(raw.strip(), now=args.now or datetime.now(UTC))
    except BrokerError as exc:
        _print({"valid": False, "error": _error_doc(exc)})
        return exc.exit_code
    _print({"valid": True, "claims": claims})
    return 0


class _JwksKeyRing(KeyRing):
    """Verification-only key ring from a JWKS document (no signer)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self._keys = keys

    def published(self, now: datetime) -> list[dict[str, Any]]:
        return list(self._keys)


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    old, new = rotate_local(data_dir, now=datetime.now(UTC), overlap=timedelta(hours=args.overlap_hours))
    _print({"retired": old, "active": new, "overlap_hours": args.overlap_hours})
    return 0


def cmd_errors(args: argparse.Namespace) -> int:
    from shared.registry import default_verifiers

    default_verifiers()  # kind-specific codes are declared when their verifiers are imported
    print("| code | HTTP | meaning |\n|---|---|---|")
    for name in sorted(CATALOGUE):
        code = CATALOGUE[name]
        print(f"| `{name}` | {code.status} | {code.description} |")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="attestation-broker", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the broker HTTP API locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--threads", type=int, default=16)
    serve.add_argument("--data-dir", help="where the local key, nonce secret, ledger and cache live")
    serve.set_defaults(func=cmd_serve)

    verify = sub.add_parser("verify", help="verify an evidence file offline and print claims and a token")
    verify.add_argument("kind")
    verify.add_argument("evidence")
    verify.add_argument("extra", nargs="*", help="certificates, runtime JSON, event logs, AK keys (by content)")
    verify.add_argument("--now", type=_parse_time, help="pin the clock (ISO 8601)")
    verify.add_argument("--nonce", type=_hex, help="raw nonce bytes (hex) the evidence must bind")
    verify.add_argument("--user-data", type=_hex, help="user data (hex) bound with the nonce")
    verify.add_argument("--policy", help="policy JSON file keyed by evidence kind")
    verify.add_argument("--collateral", help="directory of recorded vendor collateral")
    verify.add_argument("--offline", action="store_true", help="open no socket")
    verify.set_defaults(func=cmd_verify)

    token = sub.add_parser("token", help="broker token operations")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    tverify = token_sub.add_parser("verify", help="verify a broker token")
    tverify.add_argument("token", help="the token, a file holding it, or - for stdin")
    tverify.add_argument("--jwks", help="JWKS file (default: the local broker's keys)")
    tverify.add_argument("--issuer")
    tverify.add_argument("--audience")
    tverify.add_argument("--data-dir")
    tverify.add_argument("--now", type=_parse_time)
    tverify.set_defaults(func=cmd_token_verify)

    keys = sub.add_parser("keys", help="local signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="retire the active key (kept in /jwks for the overlap) and make a new one"
    )
    rotate.add_argument("--overlap-hours", type=float, default=24.0)
    rotate.add_argument("--data-dir")
    rotate.set_defaults(func=cmd_keys_rotate)

    errors = sub.add_parser("errors", help="print the error-code table (Markdown)")
    errors.set_defaults(func=cmd_errors)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
