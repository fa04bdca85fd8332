"""The quick start works offline: `make demo` (examples/demo.py) end to end, and its bundled data is intact."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.swtpm import require_tpm_tools

pytestmark = [pytest.mark.e2e, pytest.mark.swtpm]

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"


def test_bundled_example_data_matches_its_sums() -> None:
    listed = {}
    for line in (DATA / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name.removeprefix("./")] = digest
    present = {
        str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file() and p.name not in ("SHA256SUMS", "MANIFEST.md")
    }
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_demo_runs_offline_end_to_end(tmp_path: Path) -> None:
    require_tpm_tools()
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "POST /v1/attest/tpm -> 200" in text and "nonce binding checked" in text
    assert "jwt.decode(...) OK" in text
    assert "-> 403 TPM_SIGNATURE_INVALID" in text and "-> 403 NONCE_REPLAYED" in text
    assert text.count("exit 0, ear_status ") == 2
    # the demo wrote only into its work directory
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".json", ".yaml")) == ["policy.yaml"]
    assert "POST /v1/attest/tpm -> 200, ear_status affirming" in text  # pinned AK and PCR reference values


def test_readme_offline_quick_start_commands_work() -> None:
    """Every `attestation-broker verify` line of the README quick start runs from a fresh clone's root."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quick start") : readme.index("## HTTP API")]
    commands = [line.split() for line in section.splitlines() if line.startswith(".venv/bin/attestation-broker verify")]
    assert len(commands) == 2
    cli = str(Path(sys.executable).parent / "attestation-broker")
    for command in commands:
        out = subprocess.run([cli, *command[1:]], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
