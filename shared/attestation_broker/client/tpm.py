"""TPM 2.0 access for the guest client, through tpm2-tools (TPM 2.0 Part 3 commands via the tpm2-tss TCTI).

Choice: the tpm2-tools binaries (Debian/Ubuntu/RHEL package ``tpm2-tools``), driven with
``TPM2TOOLS_TCTI`` set from ``--tcti`` (``swtpm:host=127.0.0.1,port=2321``, ``device:/dev/tpmrm0``; unset:
tpm2-tss's default, the kernel resource manager). Why not tpm2-pytss: it is a compiled binding against
libtss2 headers, which would make ``pip install attestation-broker`` need a C tool chain on every broker
host (Lambda included) for a feature only guests use; tpm2-tools is one ``apt-get install`` in the guest,
ships with every cloud image family the README lists, and its file formats (TPMS_ATTEST, TPMT_SIGNATURE,
TPM2B_PUBLIC, the serialized PCR file) are exactly what the broker's ``tpm`` kind reads.

Commands used: ``tpm2_getcap handles-nv-index|handles-persistent|pcrs`` (what exists), ``tpm2_nvread`` /
``tpm2_nvwrite`` / ``tpm2_nvdefine`` (NV indices, owner authorization as the clouds configure them),
``tpm2_readpublic`` (the AK), ``tpm2_quote`` (TPM2_Quote, qualifying data = the broker binding),
``tpm2_createek`` / ``tpm2_createak`` / ``tpm2_evictcontrol`` (``--print-ak``), ``tpm2_createprimary`` (a
primary key from a cloud-provided template) and ``tpm2_flushcontext`` (transient objects: a TPM without a
resource manager, like swtpm, runs out of object slots otherwise).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from attestation_broker.client.errors import (
    CLIENT_AK_ABSENT,
    CLIENT_NV_INDEX_ABSENT,
    CLIENT_TPM_COMMAND_FAILED,
    CLIENT_TPM_UNAVAILABLE,
)

DEFAULT_DEVICE = Path("/dev/tpmrm0")
TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Quote:
    """Files as tpm2_quote writes them: TPMS_ATTEST, TPMT_SIGNATURE, serialized PCR values."""

    message: bytes
    signature: bytes
    pcrs: bytes
    bank: str
    selection: tuple[int, ...]


def _hexint(text: str) -> int:
    return int(text, 16)


def parse_handles(yaml_text: str) -> set[int]:
    """``tpm2_getcap handles-*`` prints one ``- 0x...`` line per handle."""
    return {_hexint(m) for m in re.findall(r"^\s*-\s*(0x[0-9a-fA-F]+)\s*$", yaml_text, re.MULTILINE)}


def parse_banks(yaml_text: str) -> dict[str, tuple[int, ...]]:
    """``tpm2_getcap pcrs``: ``selected-pcrs:\\n  - sha1: [ 0, 1, ... ]`` → allocated banks and their PCRs."""
    banks: dict[str, tuple[int, ...]] = {}
    for name, values in re.findall(r"-\s*(sha1|sha256|sha384|sha512|sm3_256)\s*:\s*\[([^\]]*)\]", yaml_text):
        pcrs = tuple(int(v) for v in values.replace(",", " ").split())
        if pcrs:
            banks[name] = pcrs
    return banks


class Tpm:
    """One TPM reached through a TCTI. ``tcti`` None means tpm2-tss's default (``/dev/tpmrm0``)."""

    def __init__(self, tcti: str | None = None, *, device: Path = DEFAULT_DEVICE) -> None:
        self.tcti = tcti
        self.device = device
        self._nv_cache: set[int] | None = None

    # --- plumbing ------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.tcti:
            env["TPM2TOOLS_TCTI"] = self.tcti
        return env

    def check_available(self) -> None:
        if shutil.which("tpm2_quote") is None:
            raise CLIENT_TPM_UNAVAILABLE("tpm2-tools is not installed (apt-get install tpm2-tools)")
        if self.tcti is None and not os.environ.get("TPM2TOOLS_TCTI"):
            if not self.device.exists():
                raise CLIENT_TPM_UNAVAILABLE(f"no TPM: {self.device} does not exist (pass --tcti for another TPM)")
            if not os.access(self.device, os.R_OK | os.W_OK):
                raise CLIENT_TPM_UNAVAILABLE(
                    f"no permission on {self.device} (run as root or add the user to the 'tss' group)"
                )

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        try:
            proc = subprocess.run(
                list(args), cwd=cwd, env=self._env(), capture_output=True, timeout=TIMEOUT_SECONDS, check=False
            )
        except FileNotFoundError:
            raise CLIENT_TPM_UNAVAILABLE(f"{args[0]} not found (apt-get install tpm2-tools)") from None
        except subprocess.TimeoutExpired:
            raise CLIENT_TPM_UNAVAILABLE(f"{args[0]} did not answer within {TIMEOUT_SECONDS:.0f} s") from None
        if check and proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            last = err[-1][:300] if err else f"exit {proc.returncode}"
            if "tcti" in last.lower() or "Could not load tcti" in last or "connect" in last.lower():
                raise CLIENT_TPM_UNAVAILABLE(f"TPM not reachable via {self.tcti or 'the default TCTI'}: {last}")
            raise CLIENT_TPM_COMMAND_FAILED(f"{args[0]}: {last}")
        return proc

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="attest-tpm-") as tmp:
            os.chmod(tmp, 0o700)
            yield Path(tmp)

    # --- capabilities ----------------------------------------------------------------------------
    def nv_indices(self) -> set[int]:
        if self._nv_cache is None:
            self._nv_cache = parse_handles(self.run("tpm2_getcap", "handles-nv-index").stdout.decode())
        return self._nv_cache

    def persistent_handles(self) -> set[int]:
        return parse_handles(self.run("tpm2_getcap", "handles-persistent").stdout.decode())

    def pcr_banks(self) -> dict[str, tuple[int, ...]]:
        return parse_banks(self.run("tpm2_getcap", "pcrs").stdout.decode())

    def has_nv(self, index: int) -> bool:
        return index in self.nv_indices()

    # --- NV ----------------------------------------------------------------------------------------
    def nv_read(self, index: int, *, what: str = "") -> bytes:
        if not self.has_nv(index):
            label = f" ({what})" if what else ""
            raise CLIENT_NV_INDEX_ABSENT(f"TPM NV index {index:#010x}{label} is not defined on this machine")
        with self._scratch() as tmp:
            self.run("tpm2_nvread", f"{index:#x}", "-C", "o", "-o", str(tmp / "nv.bin"))
            return (tmp / "nv.bin").read_bytes()

    def nv_define(self, index: int, size: int) -> None:
        self.run(
            "tpm2_nvdefine", f"{index:#x}", "-C", "o", "-s", str(size), "-a", "ownerread|ownerwrite|authread|authwrite"
        )
        self._nv_cache = None

    def nv_write(self, index: int, data: bytes) -> None:
        with self._scratch() as tmp:
            (tmp / "in.bin").write_bytes(data)
            self.run("tpm2_nvwrite", f"{index:#x}", "-C", "o", "-i", str(tmp / "in.bin"))

    # --- keys --------------------------------------------------------------------------------------
    def read_public(self, handle: int) -> bytes:
        """TPM2B_PUBLIC of a persistent key; CLIENT_AK_ABSENT when nothing lives at ``handle``."""
        if handle not in self.persistent_handles():
            raise CLIENT_AK_ABSENT(f"no key at persistent handle {handle:#010x}")
        with self._scratch() as tmp:
            self.run("tpm2_readpublic", "-c", f"{handle:#x}", "-o", str(tmp / "ak.pub"))
            return (tmp / "ak.pub").read_bytes()

    def create_ak(self, *, persist: int | None = None, alg: str = "rsa") -> bytes:
        """An AK (restricted signing key) under the endorsement hierarchy, as tpm2_createak makes it: EK
        (TCG EK template) as parent, SHA-256, RSASSA (rsa) or ECDSA (ecc). Returns its TPM2B_PUBLIC;
        ``persist`` makes it permanent at that handle (tpm2_evictcontrol, owner hierarchy)."""
        scheme = "rsassa" if alg == "rsa" else "ecdsa"
        with self._scratch() as tmp:
            try:
                self.run("tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub", cwd=tmp)
                self._flush_transients()
                self.run(
                    "tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", alg, "-g", "sha256", "-s", scheme,
                    "-u", "ak.pub", "-n", "ak.name", cwd=tmp,
                )  # fmt: skip
                self._flush_transients()
                if persist is not None:
                    if persist in self.persistent_handles():
                        raise CLIENT_TPM_COMMAND_FAILED(f"persistent handle {persist:#010x} is already in use")
                    self.run("tpm2_evictcontrol", "-C", "o", "-c", "ak.ctx", f"{persist:#x}", cwd=tmp)
            finally:
                self._flush_transients()
            return (tmp / "ak.pub").read_bytes()

    def _flush_transients(self) -> None:
        """Flush transient objects and sessions this tool run left loaded. Behind the kernel resource
        manager each tpm2-tools process's objects vanish with it (this is a no-op); a TPM reached directly
        (swtpm, /dev/tpm0) keeps them and has only three object slots. The saved ``.ctx`` files stay
        loadable."""
        self.run("tpm2_flushcontext", "-t", check=False)
        self.run("tpm2_flushcontext", "-s", check=False)

    @contextmanager
    def primary_from_template(
        self, hierarchy: str, name_alg: str, key_alg: str, attributes: int, auth_policy: bytes
    ) -> Iterator[tuple[Path, bytes]]:
        """TPM2_CreatePrimary in ``hierarchy`` from a template's fields; yields (context file, TPM2B_PUBLIC).
        The key is flushed afterwards (a primary is re-derivable: nothing is persisted)."""
        with self._scratch() as tmp:
            args = ["tpm2_createprimary", "-C", hierarchy, "-g", name_alg, "-G", key_alg, "-a", f"{attributes:#010x}"]
            if auth_policy:
                (tmp / "policy.bin").write_bytes(auth_policy)
                args += ["-L", str(tmp / "policy.bin")]
            args += ["-c", str(tmp / "primary.ctx"), "-o", str(tmp / "primary.pub")]
            try:
                self.run(*args)
                self._flush_transients()
                yield tmp / "primary.ctx", (tmp / "primary.pub").read_bytes()
            finally:
                self._flush_transients()

    # --- quotes ------------------------------------------------------------------------------------
    def quote(self, key: str | int, qualifying: bytes, *, bank: str = "sha256", pcrs: tuple[int, ...]) -> Quote:
        """TPM2_Quote over ``bank:pcrs`` by ``key`` (persistent handle or context file) with
        ``qualifying`` as extraData; signature in the key's own scheme (TPMT_SIGNATURE)."""
        handle = f"{key:#x}" if isinstance(key, int) else key
        selection = f"{bank}:{','.join(str(p) for p in pcrs)}"
        with self._scratch() as tmp:
            self.run(
                "tpm2_quote", "-c", handle, "-l", selection, "-q", qualifying.hex(), "-m", str(tmp / "msg"),
                "-s", str(tmp / "sig"), "-o", str(tmp / "pcrs"), "-g", "sha256",
            )  # fmt: skip
            if not isinstance(key, int):
                self._flush_transients()  # the context file was loaded for this quote
            return Quote(
                (tmp / "msg").read_bytes(), (tmp / "sig").read_bytes(), (tmp / "pcrs").read_bytes(), bank, pcrs
            )
