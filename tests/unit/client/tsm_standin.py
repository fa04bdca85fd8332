"""A configfs-tsm stand-in: an ordinary directory given the kernel's meaning (Documentation/ABI/testing/
configfs-tsm), producing reports signed by TEST-ONLY AMD-like / Intel-like keys.

``mkdir report/<name>`` creates the attributes (``provider``, ``generation``, ``inblob``, ``outblob``,
``auxblob``, ``privlevel``, ``privlevel_floor``) as files; every write to ``inblob``/``privlevel`` bumps
``generation``; reading ``outblob`` makes the report for the current ``inblob`` (``make_report``) and
writes ``outblob``/``auxblob`` into the directory. ``interfere`` simulates another writer: it is called
after the client reads ``outblob`` and may write ``inblob`` itself.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from attestation_broker.client.tsm import TsmFiles

MakeReport = Callable[[bytes, int], tuple[bytes, bytes]]  # (inblob, privlevel) -> (outblob, auxblob)

VCEK_GUID = uuid.UUID("63da758d-e664-4564-adc5-f4b93be8accd")
ASK_GUID = uuid.UUID("4ab7b379-bbac-4fe4-a02f-05aef327c782")
VLEK_GUID = uuid.UUID("a8074bc2-a25a-483e-aae6-39c045a0b8a1")


def cert_table(entries: list[tuple[uuid.UUID, bytes]]) -> bytes:
    """The SEV-SNP extended-report certificate table (GHCB spec, SNP_GET_EXT_REPORT): (GUID, offset,
    length) entries, an all-zero terminator, then the certificates; GUIDs in EFI (little-endian) form."""
    head = 24 * (len(entries) + 1)
    index, data = b"", b""
    for guid, blob in entries:
        index += guid.bytes_le + struct.pack("<II", head + len(data), len(blob))
        data += blob
    return index + bytes(24) + data


@dataclass
class KernelTsm(TsmFiles):
    provider: str
    make_report: MakeReport
    privlevel_floor: int = 0
    interfere: Callable[[Path], None] | None = None
    reports: int = 0
    entries_created: list[str] = field(default_factory=list)

    def mkdir(self, path: Path) -> None:
        super().mkdir(path)  # FileExistsError / PermissionError as the kernel would
        self.entries_created.append(path.name)
        for name, value in (
            ("provider", self.provider + "\n"),
            ("generation", "0\n"),
            ("privlevel_floor", f"{self.privlevel_floor}\n"),
            ("privlevel", f"{self.privlevel_floor}\n"),
            ("inblob", ""),
            ("outblob", ""),
            ("auxblob", ""),
        ):
            (path / name).write_text(value)

    def rmdir(self, path: Path) -> None:
        for child in path.iterdir():
            child.unlink()
        super().rmdir(path)

    def _bump(self, entry: Path) -> None:
        generation = int((entry / "generation").read_text()) + 1
        (entry / "generation").write_text(f"{generation}\n")

    def write(self, path: Path, data: bytes) -> None:
        if path.name == "inblob":
            if len(data) > 64:
                raise OSError(22, "Invalid argument")
        elif path.name == "privlevel":
            level = int(data.decode())
            if not self.privlevel_floor <= level <= 3:
                raise OSError(22, "Invalid argument")
        else:
            raise PermissionError(13, "Permission denied")  # provider, generation, outblob are read-only
        path.write_bytes(data)
        self._bump(path.parent)

    def read(self, path: Path) -> bytes:
        if path.name == "outblob":
            entry = path.parent
            inblob = (entry / "inblob").read_bytes().ljust(64, b"\0")
            level = int((entry / "privlevel").read_text())
            outblob, auxblob = self.make_report(inblob, level)
            self.reports += 1
            (entry / "outblob").write_bytes(outblob)
            (entry / "auxblob").write_bytes(auxblob)
            if self.interfere is not None:
                self.interfere(entry)
            return outblob
        return path.read_bytes()
