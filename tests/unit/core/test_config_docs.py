"""docs/configuration.md is generated from Settings and must be current (run tools/update_config_docs.py)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

from attestation_broker.config import Settings

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "update_config_docs.py"


def test_configuration_doc_is_current_and_complete() -> None:
    out = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_every_setting_is_one_documented_variable() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    rows = dict(re.findall(r"^\| `(BROKER_[A-Z0-9_]+)` \| \w+ \| [^|]*(?:\\\|[^|]*)*\| (.+) \|$", text, re.MULTILINE))
    assert sorted(rows) == sorted(f"BROKER_{f.name.upper()}" for f in dataclasses.fields(Settings))
    assert all(len(meaning) > 10 for meaning in rows.values())


def test_documented_defaults_are_the_real_ones() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert f"| `BROKER_TOKEN_TTL_SECONDS` | integer | `{Settings.token_ttl_seconds}` |" in text
    assert f"| `BROKER_MAX_BODY_BYTES` | integer | `{Settings.max_body_bytes}` |" in text
    env = Settings.from_env({"BROKER_MAX_BODY_BYTES": "7", "BROKER_OFFLINE": "yes", "BROKER_MAA_ISSUERS": "a, b"})
    assert (env.max_body_bytes, env.offline, env.maa_issuers) == (7, True, ("a", "b"))
