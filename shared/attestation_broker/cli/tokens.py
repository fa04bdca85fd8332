"""``attestation-broker token verify``: check a broker token against the local keys or a JWKS file."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from attestation_broker.cli.common import error_doc, parse_time, print_json
from attestation_broker.config import Settings
from attestation_broker.errors import BrokerError
from attestation_broker.token.keys import KeyRing, local_keyring


def cmd_token_verify(args: argparse.Namespace) -> int:
    from attestation_broker.token.issuer import TokenService

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
            unreadable = {"code": "CONFIG_INVALID", "status": 500, "detail": "unreadable JWKS"}
            print_json({"valid": False, "error": unreadable})
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
        print_json({"valid": False, "error": error_doc(exc)})
        return exc.exit_code
    print_json({"valid": True, "claims": claims})
    return 0


class _JwksKeyRing(KeyRing):
    """Verification-only key ring from a JWKS document (no signer)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self._keys = keys

    def published(self, now: datetime) -> list[dict[str, Any]]:
        return list(self._keys)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="broker token operations")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    tverify = token_sub.add_parser("verify", help="verify a broker token")
    tverify.add_argument("token", help="the token, a file holding it, or - for stdin")
    tverify.add_argument("--jwks", help="JWKS file (default: the local broker's keys)")
    tverify.add_argument("--issuer")
    tverify.add_argument("--audience")
    tverify.add_argument("--data-dir")
    tverify.add_argument("--now", type=parse_time)
    tverify.set_defaults(func=cmd_token_verify)
