"""Regenerate the README's error-code table from the code catalogue."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from attestation_broker.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"

buffer = io.StringIO()
with contextlib.redirect_stdout(buffer):
    main(["errors"])
text = README.read_text()
table = buffer.getvalue().strip()
text = re.sub(
    r"(<!-- errors:begin[^\n]*-->\n).*?(<!-- errors:end -->)",
    lambda m: m.group(1) + table + "\n" + m.group(2),
    text,
    flags=re.DOTALL,
)
README.write_text(text)
