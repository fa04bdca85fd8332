"""The local server behind ``attestation-broker serve``: granian worker processes running ``attestation_broker.rsgi``.

Why granian (measured on the 2-core dev machine on loopback; figures in docs/deploy.md "Local server"): cheroot (the
previous thread pool) answered no ``/healthz`` probe while 16 clients held idle connections, gunicorn ``gthread`` pins
a thread per request being read, and uvicorn, though it pins nothing, kept 64 idle or half-sent connections open
indefinitely (no header deadline). granian parses HTTP/1.1 in its Rust runtime (no Python thread per connection) and
closes a connection whose headers do not arrive within ``header_read_timeout``, including one that sends nothing,
provided HTTP/2 auto-detection is off (it reads the preface before that deadline starts), hence ``HTTPModes.http1``.

Shape:

- ``workers`` processes (default: the core count) share the listening socket; each builds its own broker through
  :func:`create_app` from the environment, so CPU-bound verification uses every core.
- Connections are read by granian's Rust runtime: idle or trickling clients cost memory, never a worker. The header
  deadline is granian's ``header_read_timeout``; the body deadline and the body limit are in the RSGI adapter.
- Each worker's event loop is uvloop (libuv) where it is installed (a Linux/macOS dependency of the package), else
  the standard asyncio loop. Every request crosses from granian's Rust threads to that loop and back, and the
  standard loop schedules in Python. Measured on the 2-core dev machine (``bench/bench_server.py``'s setup, four
  alternating rounds each, docs/deploy.md "Local server"): uvloop used 3 % less server CPU per attestation at 64
  closed-loop connections (967 against 997 µs) and 9 % less at 1000 req/s (1114 against 1230 µs), with the same or
  a lower p99. rloop (granian's own Rust loop) was tried only while other jobs loaded the machine, with no clear
  result, and is not used.

Shared state across worker processes (each worker is a separate broker over the same ``--data-dir``):

- **Signing key and nonce secret**: created once by the parent before the workers start (so workers never race to
  create them) and then read by each worker; every worker signs with the same key and verifies every worker's nonces.
- **Key rotation** (``attestation-broker keys rotate``) changes files on disk; workers load keys at start, so send
  ``SIGHUP`` to the ``serve`` process afterwards: granian respawns every worker gracefully and each reloads the
  key ring. Until then the old key keeps signing (it stays published for the overlap window either way).
- **Replay ledger**: one SQLite database in WAL mode shared by all workers; each worker has its own connection
  with a busy timeout, so a nonce is single-use across processes (SQLite serialises the ``INSERT OR IGNORE``).
- **Collateral cache**: the in-memory layer is per worker; the on-disk store under ``--data-dir`` is shared, so a
  vendor object is fetched at most once per worker until it is on disk.
- **Load shedding** (``BROKER_MAX_INFLIGHT_ATTESTATIONS``) counts per worker.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attestation_broker.rsgi import RsgiApp

if TYPE_CHECKING:
    from granian.constants import Loops

log = logging.getLogger("attestation_broker")

# Environment handed from ``serve`` to its workers (granian spawns them; they rebuild the broker from it).
ENV_BODY_TIMEOUT = "ATTESTATION_BROKER_SERVE_BODY_TIMEOUT"
ENV_THREADS = "ATTESTATION_BROKER_SERVE_THREADS"


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0  # 0: one per core
    threads: int = 0  # verification threads per worker; 0: on the worker's event loop (see attestation_broker.rsgi)
    header_timeout: float = 10.0  # seconds to receive the request line and headers
    body_timeout: float = 10.0  # seconds to receive the whole body
    backlog: int = 1024

    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


def event_loop() -> Loops:
    """uvloop when importable (see the module docstring), else the standard asyncio loop."""
    from granian.constants import Loops

    try:
        import uvloop  # noqa: F401 - only probing that it is installed
    except ImportError:
        return Loops.asyncio
    return Loops.uvloop


def create_app() -> RsgiApp:
    """granian factory: one broker per worker process, configured from ``BROKER_*`` (set by ``serve``)."""
    from attestation_broker import logs
    from attestation_broker.api.routes import Api
    from attestation_broker.bootstrap import build_broker
    from attestation_broker.config import Settings

    logs.configure()
    settings = Settings.from_env()
    api = Api(build_broker(settings))  # BROKER_FIXED_TIME, if set, pins the evidence clock there
    return RsgiApp(
        api,
        body_timeout=float(os.environ.get(ENV_BODY_TIMEOUT, "10")),
        threads=int(os.environ.get(ENV_THREADS, "0")),
    )


def serve(options: ServerOptions) -> None:
    """Run until SIGINT/SIGTERM. ``BROKER_*`` in ``os.environ`` is what every worker builds its broker from."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    from attestation_broker.bootstrap import prepare_data_dir
    from attestation_broker.config import Settings

    # Create the key and nonce secret once, here, so worker processes only ever read them.
    prepare_data_dir(Settings.from_env())
    os.environ[ENV_BODY_TIMEOUT] = str(options.body_timeout)
    os.environ[ENV_THREADS] = str(options.threads)
    server = Server(
        "attestation_broker.server:create_app",
        address=options.host,
        port=options.port,
        interface=Interfaces.RSGI,
        websockets=False,
        http=HTTPModes.http1,
        workers=options.worker_count(),
        loop=event_loop(),
        backlog=options.backlog,
        http1_settings=HTTP1Settings(header_read_timeout=int(options.header_timeout * 1000)),
        factory=True,
        working_dir=Path.cwd(),
        log_access=False,
    )
    log.info(
        "attestation-broker listening on http://%s:%d (%d workers)", options.host, options.port, options.worker_count()
    )
    server.serve()
