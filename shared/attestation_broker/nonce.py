"""Stateless signed nonces (docs/architecture.md "Freshness").

Wire form: lowercase hex of ``version(1) ‖ issued_at(8, big-endian Unix seconds) ‖ random(16) ‖
HMAC-SHA256(secret, version ‖ issued_at ‖ random)(32)`` — 57 bytes, 114 hex characters. The raw
57 bytes are what evidence binds (see :mod:`attestation_broker.binding`). Checking a nonce verifies, in order:
form (NONCE_MALFORMED), MAC (NONCE_FORGED), issue time not in the future beyond the clock skew
(NONCE_FROM_FUTURE), age within the TTL (NONCE_EXPIRED) and, with a replay ledger, single use
(NONCE_REPLAYED).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from attestation_broker.errors import NONCE_EXPIRED, NONCE_FORGED, NONCE_FROM_FUTURE, NONCE_MALFORMED
from attestation_broker.ledger import ReplayLedger

VERSION = 1
_BODY = struct.Struct(">BQ16s")
NONCE_BYTES = _BODY.size + 32
_NONCE_SYNTAX = re.compile(f"[0-9a-fA-F]{{{NONCE_BYTES * 2}}}")


@dataclass(frozen=True)
class Nonce:
    raw: bytes
    issued_at: datetime
    expires_at: datetime

    @property
    def value(self) -> str:
        return self.raw.hex()

    @property
    def ledger_id(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


class NonceService:
    def __init__(
        self,
        secret: bytes,
        *,
        ttl: timedelta = timedelta(minutes=5),
        skew: timedelta = timedelta(seconds=60),
        ledger: ReplayLedger | None = None,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("nonce secret must be at least 32 bytes")
        self._secret = secret
        self.ttl = ttl
        self.skew = skew
        self.ledger = ledger

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()

    def issue(self, now: datetime) -> Nonce:
        issued = int(now.timestamp())
        body = _BODY.pack(VERSION, issued, os.urandom(16))
        issued_at = datetime.fromtimestamp(issued, UTC)
        return Nonce(body + self._mac(body), issued_at, issued_at + self.ttl)

    def check(self, value: str, now: datetime) -> Nonce:
        """Verify a nonce and, when a ledger is configured, consume it (single use)."""
        # Exactly 114 hex digits: bytes.fromhex would also accept spaces (and a shorter result).
        if not _NONCE_SYNTAX.fullmatch(value):
            raise NONCE_MALFORMED(f"nonce must be {NONCE_BYTES * 2} hex characters")
        raw = bytes.fromhex(value)
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        version, issued, _ = _BODY.unpack(body)
        if version != VERSION:
            raise NONCE_MALFORMED(f"unknown nonce version {version}")
        if not hmac.compare_digest(mac, self._mac(body)):
            raise NONCE_FORGED()
        issued_at = datetime.fromtimestamp(issued, UTC)
        if issued_at > now + self.skew:
            raise NONCE_FROM_FUTURE()
        nonce = Nonce(raw, issued_at, issued_at + self.ttl)
        if now > nonce.expires_at:
            raise NONCE_EXPIRED()
        if self.ledger is not None:
            self.ledger.consume(nonce.ledger_id, expires_at=nonce.expires_at + self.skew, now=now)
        return nonce
