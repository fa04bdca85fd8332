"""Start ``attestation-broker serve`` as a real process on loopback and talk raw HTTP/1.1 to it."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.proc import free_port, wait_http


@dataclass
class Served:
    base: str
    port: int
    output: list[str] = field(default_factory=list)  # stdout + stderr lines, filled when the server stops


@contextmanager
def serve(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    port = free_port()
    cli = Path(sys.executable).parent / "attestation-broker"
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "BROKER_OFFLINE": "1", **(env or {})},
    )
    served = Served(f"http://127.0.0.1:{port}", port)
    try:
        wait_http(served.base + "/healthz")
        yield served
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        served.output.extend(out.splitlines())


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes; return (status, lower-case headers, body) of the first response (status 0: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            part = sock.recv(65536)
            if not part:
                return 0, {}, buf
            buf += part
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            part = sock.recv(65536)
            if not part:
                break
            body += part
        return (int(match.group(1)) if match else 0), headers, body[:length]
