"""``attestation-broker keys rotate [--alg ES256|RS256]``: retire the active local signing key of one algorithm
(kept in /jwks for the overlap) and make a new one."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from attestation_broker.cli.common import ensure_data_dir, print_json
from attestation_broker.config import Settings
from attestation_broker.token.keys import rotate_local
from attestation_broker.token.signers import ALGORITHMS, ES256


def _announce(message: str) -> None:
    sys.stderr.write(f"attestation-broker: {message}\n")


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    data_dir = ensure_data_dir(Path(args.data_dir) if args.data_dir else settings.data_dir, _announce)
    old, new = rotate_local(
        data_dir, now=datetime.now(UTC), overlap=timedelta(hours=args.overlap_hours), algorithm=args.alg
    )
    print_json({"retired": old, "active": new, "overlap_hours": args.overlap_hours, "alg": args.alg})
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="local signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="retire the active key (kept in /jwks for the overlap) and make a new one"
    )
    rotate.add_argument("--overlap-hours", type=float, default=24.0)
    rotate.add_argument("--data-dir", help="the local broker's data directory (default: BROKER_DATA_DIR)")
    rotate.add_argument("--alg", choices=ALGORITHMS, default=ES256, help="which key to rotate (default ES256)")
    rotate.set_defaults(func=cmd_keys_rotate)
