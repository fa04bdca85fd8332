"""The Lambda artifact's size: ``scripts/package_lambda.sh`` builds it into a temporary file (arm64 wheels from PyPI,
as ``make smoke`` does) and its zipped size is printed beside the 15 MB target.

Run: ``.venv/bin/python -m bench.bench_artifact`` (part of ``make bench``). ``make smoke`` builds the same zip and
``scripts/check_lambda_zip.py`` also imports every handler from it; this only measures. Prints numbers only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.harness import record

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MB = 15.0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lambda.zip"
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "package_lambda.sh"), str(out)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHON": sys.executable},
            timeout=900,
        )
        zipped = out.stat().st_size / 1e6
        with zipfile.ZipFile(out) as archive:
            infos = archive.infolist()
        unzipped = sum(i.file_size for i in infos) / 1e6
    print("== Lambda artifact (scripts/package_lambda.sh, arm64 wheels)")
    print(f"  {zipped:.1f} MB zipped, {unzipped:.1f} MB unzipped, {len(infos)} files (target <= {LIMIT_MB:g} MB)")
    record("Lambda artifact", f"{zipped:.1f} MB zipped", f"<= {LIMIT_MB:g} MB", zipped <= LIMIT_MB)


if __name__ == "__main__":
    main()
