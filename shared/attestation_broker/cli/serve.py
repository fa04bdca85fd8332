"""``attestation-broker serve``: the broker HTTP API on the local multi-process server (``attestation_broker.server``).

Options that change the broker (``--data-dir``, the issuer derived from ``--host``/``--port``) are exported as
``BROKER_*`` so every worker process builds the same broker. ``SIGHUP`` respawns the workers (after a key rotation).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from attestation_broker.cli.common import ensure_data_dir
from attestation_broker.config import Settings
from attestation_broker.errors import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    from attestation_broker import logs
    from attestation_broker.server import ServerOptions, serve

    logs.configure()
    if args.data_dir:
        os.environ["BROKER_DATA_DIR"] = str(Path(args.data_dir).resolve())
    if args.collateral:
        os.environ["BROKER_COLLATERAL_DIR"] = str(Path(args.collateral).resolve())
    settings = Settings.from_env()  # validates the environment once, before any worker starts
    if settings.issuer == Settings.issuer:
        os.environ["BROKER_ISSUER"] = f"http://{args.host}:{args.port}"
    ensure_data_dir(settings.data_dir, logging.getLogger("attestation_broker").warning)
    if settings.fixed_time:
        logging.getLogger("attestation_broker").warning(
            "evidence is verified as of %s (BROKER_FIXED_TIME); tokens use the real clock", settings.fixed_time
        )
    try:
        # Built once here, before any worker: a broken configuration (e.g. an invalid policy document) stops the
        # server before it listens, and the local key and nonce secret exist before the workers read them.
        from attestation_broker.bootstrap import build_broker

        build_broker(Settings.from_env())
    except ConfigError as exc:
        print(f"attestation-broker: refusing to start: {exc.detail}", file=sys.stderr)
        return 2
    serve(
        ServerOptions(
            host=args.host,
            port=args.port,
            workers=args.workers,
            threads=args.threads,
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
        )
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the broker HTTP API locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: the core count)"
    )
    serve.add_argument(
        "--threads",
        type=int,
        default=0,
        help="verification threads per worker; 0 (default) verifies on the worker's event loop, the fastest for "
        "CPU-bound work; N > 0 keeps the loop free during slow vendor fetches at a per-request cost (docs/deploy.md)",
    )
    serve.add_argument(
        "--header-timeout", type=float, default=10.0, help="seconds to receive request headers (default: 10)"
    )
    serve.add_argument("--body-timeout", type=float, default=10.0, help="seconds to receive the body (default: 10)")
    serve.add_argument("--data-dir", help="where the local key, nonce secret, ledger and cache live")
    serve.add_argument("--collateral", help="a read-only collateral bundle directory (as BROKER_COLLATERAL_DIR)")
    serve.set_defaults(func=cmd_serve)
