"""``attestation-broker serve``: the broker's HTTP API on a local server."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from attestation_broker.bootstrap import build_broker
from attestation_broker.config import Settings
from attestation_broker.errors import ConfigError


def cmd_serve(args: argparse.Namespace) -> int:
    from attestation_broker import logs
    from attestation_broker.api.routes import Api
    from attestation_broker.wsgi import serve

    logs.configure()
    settings = Settings.from_env()
    if args.data_dir:
        settings = replace(settings, data_dir=Path(args.data_dir))
    if settings.issuer == Settings.issuer:
        settings = replace(settings, issuer=f"http://{args.host}:{args.port}")
    if settings.fixed_time:
        logging.getLogger("attestation_broker").warning(
            "evidence is verified as of %s (BROKER_FIXED_TIME); tokens use the real clock", settings.fixed_time
        )
    try:
        broker = build_broker(settings)
    except ConfigError as exc:
        # A broken configuration (e.g. an invalid policy document) stops the server before it listens.
        print(f"attestation-broker: refusing to start: {exc.detail}", file=sys.stderr)
        return 2
    serve(Api(broker), host=args.host, port=args.port, threads=args.threads)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the broker HTTP API locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--threads", type=int, default=16)
    serve.add_argument("--data-dir", help="where the local key, nonce secret, ledger and cache live")
    serve.set_defaults(func=cmd_serve)
