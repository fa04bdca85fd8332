"""Replay ledgers for single-use nonces (docs/architecture.md "Freshness").

``consume`` atomically records a nonce identifier until it expires; a second ``consume`` of the same
identifier raises NONCE_REPLAYED. Backends: SQLite locally (this module) and DynamoDB on AWS
(conditional put with a TTL attribute, ``attestation_broker.aws.ledger``). A backend failure is LEDGER_UNAVAILABLE
(503), never a pass.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

from attestation_broker.errors import LEDGER_UNAVAILABLE, NONCE_REPLAYED
from attestation_broker.files import private_file

log = logging.getLogger("attestation_broker")


class ReplayLedger(Protocol):
    def consume(self, nonce_id: str, *, expires_at: datetime, now: datetime) -> None: ...


class SqliteLedger:
    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            # Created 0600 before SQLite opens it: SQLite gives its -wal/-shm files the database's mode.
            private_file(path)
        # Several ``serve`` worker processes share this file: WAL lets readers run beside the one writer, and the
        # busy timeout makes a writer wait for another process's transaction instead of failing.
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=5.0)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS used_nonces (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)"
            )

    def consume(self, nonce_id: str, *, expires_at: datetime, now: datetime) -> None:
        try:
            with self._lock:
                self._conn.execute("DELETE FROM used_nonces WHERE expires_at < ?", (int(now.timestamp()),))
                cursor = self._conn.execute(
                    "INSERT OR IGNORE INTO used_nonces (id, expires_at) VALUES (?, ?)",
                    (nonce_id, int(expires_at.timestamp())),
                )
        except sqlite3.Error as exc:
            log.error("replay ledger error: %s", type(exc).__name__)
            raise LEDGER_UNAVAILABLE("replay ledger error") from None
        if cursor.rowcount != 1:
            raise NONCE_REPLAYED()
