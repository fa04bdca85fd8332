"""A real software TPM (swtpm) on loopback, plus tpm2-tools runners, for genuine-quote tests.

``with swtpm_instance() as tpm: tpm.run("tpm2_createek", ...)`` starts ``swtpm socket --tpm2`` on two free
127.0.0.1 ports with a throw-away state directory, waits until it answers, and stops it afterwards.
``require_tpm_tools()`` skips when the binaries are missing on a developer machine, but FAILS under
``CI=true`` (CI installs them, so a missing binary there is a broken set-up, not a reason to skip).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TOOLS = (
    "swtpm",
    "tpm2_createek",
    "tpm2_createak",
    "tpm2_quote",
    "tpm2_checkquote",
    "tpm2_pcrread",
    "tpm2_pcrextend",
    "tpm2_readpublic",
    "tpm2_flushcontext",
)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def require_tpm_tools() -> None:
    """Skip (developer machine) or fail (CI=true) when swtpm / tpm2-tools are not installed."""
    missing = missing_tools()
    if not missing:
        return
    message = f"swtpm/tpm2-tools not installed: missing {', '.join(missing)} (apt-get install swtpm tpm2-tools)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _free_port_pair() -> tuple[int, int]:
    """Two consecutive free loopback ports: the tss2 swtpm TCTI always uses ``port + 1`` as control port."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port, port + 1
    raise AssertionError("no two consecutive free loopback ports")


@dataclass(frozen=True)
class Swtpm:
    """A running swtpm (control port = port + 1, as the TCTI expects). ``workdir`` is a scratch directory for tool outputs (removed on exit)."""

    port: int
    ctrl_port: int
    workdir: Path

    @property
    def tcti(self) -> str:
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TPM2TOOLS_TCTI"] = self.tcti
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a tpm2-tools command against this TPM in ``workdir``; raises with its stderr when it fails."""
        proc = subprocess.run(
            list(args), cwd=self.workdir, env=self.env(), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[:2000]}")
        return proc

    def flush(self) -> None:
        """Flush transient objects and sessions: swtpm has no resource manager, object slots run out."""
        self.run("tpm2_flushcontext", "-t")
        self.run("tpm2_flushcontext", "-s")

    def path(self, name: str) -> Path:
        return self.workdir / name


def _wait_ready(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def swtpm_instance(*, startup_timeout: float = 10.0) -> Iterator[Swtpm]:
    """Start swtpm on free loopback ports with a temporary state dir; always stop it on exit."""
    require_tpm_tools()
    with tempfile.TemporaryDirectory(prefix="swtpm-") as tmp:
        state = Path(tmp) / "state"
        work = Path(tmp) / "work"
        state.mkdir()
        work.mkdir()
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between probing and binding: retry
            port, ctrl = _free_port_pair()
            log = Path(tmp) / "swtpm.log"
            cmd = [
                "swtpm",
                "socket",
                "--tpm2",
                "--tpmstate",
                f"dir={state}",
                "--server",
                f"type=tcp,port={port},bindaddr=127.0.0.1",
                "--ctrl",
                f"type=tcp,port={ctrl},bindaddr=127.0.0.1",
                "--flags",
                "startup-clear",
                "--log",
                f"file={log},level=1",
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                if _wait_ready(proc, port, time.monotonic() + startup_timeout):
                    yield Swtpm(port, ctrl, work)
                    return
                last_error = (proc.stderr.read() if proc.stderr and proc.poll() is not None else b"").decode()[:500]
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
                if proc.stderr:
                    proc.stderr.close()
        raise AssertionError(f"swtpm did not start: {last_error}")
