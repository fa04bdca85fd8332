"""Helpers every ``attestation-broker`` subcommand shares: argument types, input files, the data directory,
JSON output. What commands print for people (summary line, ``--quiet``, ``--format``) is in :mod:`.output`."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attestation_broker.errors import UNREADABLE_FILE, BrokerError

_HEX_TEXT = re.compile(rb"(?:0[xX])?[0-9a-fA-F]+")
_BASE64_TEXT = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
# Shorter text is left alone: a real report, quote, certificate or log is far longer than this.
_MIN_ENCODED = 64


def parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def hex_bytes(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected hex") from None


def print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def error_doc(exc: BrokerError) -> dict[str, Any]:
    return {"code": exc.code.name, "status": exc.status, "exit": exc.exit_code, "detail": exc.detail}


def decode_text_bytes(data: bytes) -> bytes:
    """Binary evidence given as hex or base64 text → the bytes; anything else unchanged.

    Text that is meaningful as text never matches: JSON, JWTs and tpm2-tools output contain characters outside
    the hex and base64 alphabets (braces, dots, colons), and PEM is recognized by its ``-----BEGIN`` line."""
    compact = b"".join(data.split())
    if len(compact) < _MIN_ENCODED or b"-----BEGIN" in compact:
        # PEM with its whitespace removed is all base64url characters ("-----BEGIN...-----"): keep it as text.
        return data
    if _HEX_TEXT.fullmatch(compact) and len(compact.removeprefix(b"0x").removeprefix(b"0X")) % 2 == 0:
        return bytes.fromhex(compact[2:].decode() if compact[:2].lower() == b"0x" else compact.decode())
    if _BASE64_TEXT.fullmatch(compact):
        try:
            if b"-" in compact or b"_" in compact:
                return base64.urlsafe_b64decode(compact + b"=" * (-len(compact) % 4))
            return base64.b64decode(compact + b"=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            return data
    return data


def read_input(path: str, *, decode: bool = True) -> bytes:
    """A file named on the command line (``-``: stdin), hex/base64 text decoded; UNREADABLE_FILE (exit 2) if it
    cannot be read, naming the file and the reason."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UNREADABLE_FILE(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return decode_text_bytes(data) if decode else data


def read_submission_files(args: argparse.Namespace) -> tuple[bytes, tuple[bytes, ...]] | None:
    """The files named by ``args.evidence`` and ``args.extra``; None once an UNREADABLE_FILE document is printed."""
    try:
        return Path(args.evidence).read_bytes(), tuple(Path(p).read_bytes() for p in args.extra)
    except OSError as exc:
        print_json({"error": {"code": "UNREADABLE_FILE", "status": 400, "detail": exc.strerror}})
        return None


def ensure_data_dir(path: Path, announce: Any) -> Path:
    """Create the data directory (0700) if needed and say so through ``announce`` (a one-argument callable)."""
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        announce(f"created data directory {path}")
    return path
