"""``make fuzz``: the suite's mutation fuzzer for a time budget per kind, keeping what it finds.

Usage: ``python -m tests.fuzz.run [--seconds N] [kind ...]`` (``FUZZ_SECONDS`` is the default budget,
600 s per kind). Inputs run in Hypothesis batches; every finding (untyped exception, 500-class error,
input slower than 1 s) is shrunk by Hypothesis, saved under ``tests/fuzz/corpus/<kind>/`` for the suite
to replay, and makes the run exit 1. Resident memory growth beyond the bound per kind also fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tests.fuzz.engine import FuzzFinding, run
from tests.fuzz.harness import save
from tests.fuzz.seeds import KINDS
from tests.fuzz.test_fuzz import MAX_GROWTH_MB, _rss_mb

BATCH = 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", "600")))
    parser.add_argument("kinds", nargs="*", default=list(KINDS))
    args = parser.parse_args(argv)
    failed = False
    for kind in args.kinds:
        started, inputs, findings = time.monotonic(), 0, 0
        before = _rss_mb()
        while time.monotonic() - started < args.seconds:
            try:
                inputs += run(kind, BATCH)
            except FuzzFinding as exc:
                findings += 1
                path = save(exc.finding)
                print(f"{kind}: {exc.finding.what} -> {path}", flush=True)
        growth = _rss_mb() - before
        status = "ok" if not findings and growth < MAX_GROWTH_MB else "FAIL"
        failed |= status == "FAIL"
        print(
            f"{kind}: {inputs} inputs in {time.monotonic() - started:.0f} s, {findings} findings, "
            f"memory +{growth:.0f} MB: {status}",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
