"""Linux configfs-tsm reports (kernel ≥ 6.7): Documentation/ABI/testing/configfs-tsm.

One report is one directory under ``<root>/report/``: ``mkdir`` an entry, optionally write ``privlevel``
(SEV-SNP VMPL, 0–3, never below ``privlevel_floor``), write the 64-byte ``inblob`` (the REPORT_DATA /
REPORTDATA), then read ``outblob`` (the SNP ATTESTATION_REPORT or the TDX quote), ``auxblob`` (SNP: the
extended-report certificate table carrying VCEK/VLEK/ASK/ARK) and ``provider`` (``sev_guest`` /
``tdx_guest``). Every write bumps ``generation``; concurrent writers are detected as the ABI suggests: the
generation read after our writes must be the one before them plus our write count, and must not move
while ``outblob``/``auxblob`` are read; otherwise the report may answer someone else's ``inblob`` and is
retried. The entry is
removed (``rmdir``) afterwards.

The kernel ABI is a handful of files, so it is driven with plain file I/O here: no library wraps it. All
file operations go through one :class:`TsmFiles` object (plain ``os`` calls); the kernel gives them their
meaning, and the tests substitute an object that gives an ordinary directory the same meaning (a
stand-in signing with test-only keys), since configfs cannot be emulated by a plain directory alone.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from attestation_broker.client.errors import (
    CLIENT_TSM_CONTENDED,
    CLIENT_TSM_FAILED,
    CLIENT_TSM_PROVIDER_MISMATCH,
    CLIENT_TSM_UNAVAILABLE,
)

DEFAULT_TSM_ROOT = Path("/sys/kernel/config/tsm")
PROVIDERS = {"snp": "sev_guest", "tdx": "tdx_guest"}
INBLOB_SIZE = 64
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class TsmReport:
    provider: str
    outblob: bytes
    auxblob: bytes
    generation: int
    privlevel: int | None


class TsmFiles:
    """The five file operations configfs-tsm needs, as plain system calls."""

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def mkdir(self, path: Path) -> None:
        path.mkdir()

    def rmdir(self, path: Path) -> None:
        path.rmdir()

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def write(self, path: Path, data: bytes) -> None:
        # One write(2) of the whole blob: configfs binary attributes take the value of a single write.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


OS_FILES = TsmFiles()


def report_dir(root: Path) -> Path:
    return root / "report"


def available(root: Path = DEFAULT_TSM_ROOT, files: TsmFiles = OS_FILES) -> bool:
    return files.is_dir(report_dir(root))


def _read_text(files: TsmFiles, path: Path) -> str:
    return files.read(path).decode("ascii", errors="replace").strip()


def _read_optional(files: TsmFiles, path: Path) -> bytes:
    try:
        return files.read(path)
    except FileNotFoundError:
        return b""
    except OSError as exc:
        # auxblob reads fail with ENXIO/EINVAL where the provider has no auxiliary data
        if exc.errno in (6, 22, 61):
            return b""
        raise


def probe_provider(root: Path = DEFAULT_TSM_ROOT, files: TsmFiles = OS_FILES) -> str:
    """Create a throw-away entry to learn the provider (the kernel names it only per entry)."""
    entry = _mkdir(files, root)
    try:
        return _read_text(files, entry / "provider")
    except OSError as exc:
        raise CLIENT_TSM_FAILED(f"cannot read {entry / 'provider'}: {exc.strerror}") from None
    finally:
        _rmdir(files, entry)


def _mkdir(files: TsmFiles, root: Path) -> Path:
    base = report_dir(root)
    if not files.is_dir(base):
        raise CLIENT_TSM_UNAVAILABLE(f"{base} does not exist (needs Linux >= 6.7 with configfs mounted and a CVM)")
    entry = base / f"attestation-broker-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        files.mkdir(entry)
    except PermissionError:
        raise CLIENT_TSM_UNAVAILABLE(f"no permission to create {entry} (run as root)") from None
    except OSError as exc:
        raise CLIENT_TSM_UNAVAILABLE(f"cannot create a report entry under {base}: {exc.strerror}") from None
    return entry


def _rmdir(files: TsmFiles, entry: Path) -> None:
    # A leaked entry is harmless (the kernel frees it on reboot); never mask the real outcome.
    with contextlib.suppress(OSError):
        files.rmdir(entry)


def get_report(
    inblob: bytes,
    *,
    root: Path = DEFAULT_TSM_ROOT,
    kind: str | None = None,
    privlevel: int | None = None,
    files: TsmFiles = OS_FILES,
) -> TsmReport:
    """Produce one report bound to ``inblob`` (exactly 64 bytes) through configfs-tsm.

    ``kind`` ("snp" | "tdx"), when given, must match the entry's provider; ``privlevel`` is written before
    ``inblob`` (SNP only). Raises CLIENT_TSM_* codes naming what is missing on this machine.
    """
    if len(inblob) != INBLOB_SIZE:
        raise CLIENT_TSM_FAILED(f"inblob must be {INBLOB_SIZE} bytes, got {len(inblob)}")
    entry = _mkdir(files, root)
    try:
        try:
            provider = _read_text(files, entry / "provider")
        except OSError as exc:
            raise CLIENT_TSM_FAILED(f"cannot read {entry / 'provider'}: {exc.strerror}") from None
        if kind is not None and provider != PROVIDERS[kind]:
            raise CLIENT_TSM_PROVIDER_MISMATCH(
                f"{kind} needs provider {PROVIDERS[kind]}, this machine has {provider!r}"
            )
        for _attempt in range(MAX_ATTEMPTS):
            try:
                start = int(_read_text(files, entry / "generation"))
                writes = 1
                if privlevel is not None:
                    files.write(entry / "privlevel", str(privlevel).encode())
                    writes += 1
                files.write(entry / "inblob", inblob)
                before = int(_read_text(files, entry / "generation"))
                outblob = files.read(entry / "outblob")
                auxblob = _read_optional(files, entry / "auxblob")
                after = int(_read_text(files, entry / "generation"))
            except (OSError, ValueError) as exc:
                detail = exc.strerror if isinstance(exc, OSError) else "generation is not a number"
                raise CLIENT_TSM_FAILED(f"configfs-tsm report under {entry.parent} failed: {detail}") from None
            # Our writes alone must account for the generation, and nothing may write while we read.
            if before == start + writes and after == before and outblob:
                return TsmReport(provider, outblob, auxblob, after, privlevel)
        raise CLIENT_TSM_CONTENDED(f"generation kept moving over {MAX_ATTEMPTS} attempts")
    finally:
        _rmdir(files, entry)
