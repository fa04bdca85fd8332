"""Owner-only files for the broker's local state (docs/configuration.md "data dir").

The data directory holds the nonce secret, private signing keys and the replay ledger: it is created
(or tightened) to 0700 and each secret file to 0600, whatever the process umask, so that another local
user can neither read a key nor learn which nonces were used.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it owner-only; an existing directory is tightened."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # a directory owned by someone else stays as configured
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if missing, owner-only (0600) in either case."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    with contextlib.suppress(PermissionError):
        os.chmod(path, FILE_MODE)
    return path


def atomic_write(path: Path, data: bytes, *, prefix: str = ".tmp-") -> None:
    """Replace ``path`` with ``data`` atomically: a reader sees the old or the new bytes, never half. The
    temporary file is created owner-only (0600, ``mkstemp``) beside ``path`` and keeps that mode."""
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else Path("."), prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
