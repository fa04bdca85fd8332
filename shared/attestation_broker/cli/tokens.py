"""``attestation-broker token verify``: check a broker token against the local keys or a JWKS file."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from attestation_broker.cli.common import error_doc, parse_time, read_input
from attestation_broker.cli.output import add_output_options, emit, error_summary
from attestation_broker.config import Settings
from attestation_broker.errors import CONFIG_INVALID, BrokerError
from attestation_broker.token.keys import KEY_FILES, KeyRing, local_keyring
from attestation_broker.token.signers import ES256


def _keyring(args: argparse.Namespace, settings: Settings) -> KeyRing:
    if args.jwks:
        try:
            keys = json.loads(read_input(args.jwks, decode=False))["keys"]
        except (ValueError, KeyError, TypeError):
            raise CONFIG_INVALID(f"{args.jwks} is not a JWKS document (a JSON object with 'keys')") from None
        return _JwksKeyRing(keys)
    data_dir = Path(args.data_dir) if args.data_dir else settings.data_dir
    if not (data_dir / KEY_FILES[ES256]).is_file():
        # Verifying must not mint a key: say where we looked instead.
        raise CONFIG_INVALID(f"no local broker key in {data_dir}; pass --jwks FILE (the broker's /jwks) or --data-dir")
    return local_keyring(data_dir)


def cmd_token_verify(args: argparse.Namespace) -> int:
    from attestation_broker.token.issuer import TokenService

    try:
        raw = args.token
        if raw == "-" or (raw.count(".") != 2 and len(raw) < 4096 and Path(raw).is_file()):
            raw = read_input(raw, decode=False).decode("utf-8", errors="replace")
        settings = Settings.from_env()
        service = TokenService(
            _keyring(args, settings),
            issuer=args.issuer or settings.issuer,
            audience=args.audience or settings.token_audience,
            ttl=timedelta(seconds=settings.token_ttl_seconds),
        )
        claims = service.verify(raw.strip(), now=args.now or datetime.now(UTC))
    except BrokerError as exc:
        error = error_doc(exc)
        emit(args, {"valid": False, "error": error}, error_summary("token", error, exc.exit_code))
        return exc.exit_code
    status = claims.get("ear_status")
    summary = (
        f"token: valid — iss {claims.get('iss')}, sub {claims.get('sub')}, ear_status {status}, exp {claims.get('exp')}"
    )
    emit(args, {"valid": True, "claims": claims}, summary)
    return 0


class _JwksKeyRing(KeyRing):
    """Verification-only key ring from a JWKS document (no signer)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self._keys = keys

    def published(self, now: datetime) -> list[dict[str, Any]]:
        return list(self._keys)

    def verification_jwk(self, kid: object, algorithm: str, now: datetime) -> dict[str, Any] | None:
        keys = (k for k in self._keys if isinstance(k, dict) and k.get("kid") == kid)
        return next((k for k in keys if k.get("alg", algorithm) == algorithm), None)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="broker token operations")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    tverify = token_sub.add_parser("verify", help="verify a broker token")
    tverify.add_argument("token", help="the token, a file holding it, or - for stdin")
    tverify.add_argument("--jwks", help="JWKS file (default: the local broker's keys)")
    tverify.add_argument("--issuer")
    tverify.add_argument("--audience")
    tverify.add_argument("--data-dir", help="the local broker's data directory (default: BROKER_DATA_DIR)")
    tverify.add_argument("--now", type=parse_time)
    add_output_options(tverify)
    tverify.set_defaults(func=cmd_token_verify)
