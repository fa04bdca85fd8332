"""Lambda cold start per handler: import + build time beside a bare interpreter start, in one run.

Run: ``.venv/bin/python -m bench.bench_coldstart`` (part of ``make bench``). Each handler starts in a fresh
interpreter against moto (KMS, DynamoDB, S3) on loopback, as ``scripts/measure_lambda.py`` sets it up; the import
and build (Settings, registry, keyring, backends) are timed inside that process, and a bare interpreter start
(``python -c pass``, the venv's interpreter, wall time) is measured in the same run as the unit. Target: import +
build <= 250 ms. The first call is shown apart: it pays for what is built on first use (the one evidence kind a
request names, the boto3 client a call needs).

Prints numbers only; nothing is asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import record

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_COLDSTART_RUNS", "3"))


def bare_start_ms() -> float:
    samples = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def measure() -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "measure_lambda.py"), "--json", "--warm", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    start = done.stdout.index("[")
    results: list[dict[str, object]] = json.loads(done.stdout[start:])
    return results


def main() -> None:
    bare = bare_start_ms()
    runs = [measure() for _ in range(RUNS)]
    names = [str(r["handler"]) for r in runs[0]]
    print(f"== Lambda cold start per handler (median of {RUNS} fresh processes each; moto on loopback)")
    print(f"  bare interpreter start (python -c pass): {bare:.0f} ms")
    header = f"  {'handler':<10} {'import ms':>9} {'build ms':>9} {'import+build':>12} {'x bare':>7}"
    print(f"{header} {'1st call ms':>11}  target")
    slowest = (0.0, "", 0.0)
    for name in names:
        rows = [next(r for r in run if r["handler"] == name) for run in runs]
        imp = statistics.median(float(r["import_ms"]) for r in rows)  # type: ignore[arg-type]
        build = statistics.median(float(r["construct_ms"]) for r in rows)  # type: ignore[arg-type]
        first = statistics.median(float(r["first_call_ms"]) for r in rows)  # type: ignore[arg-type]
        total = imp + build
        verdict = "<= 250 ms" if total <= 250 else "OVER 250 ms"
        print(f"  {name:<10} {imp:9.0f} {build:9.0f} {total:12.0f} {total / bare:7.1f} {first:11.0f}  {verdict}")
        slowest = max(slowest, (total, name, total / bare))
    total, name, times_bare = slowest
    record(
        "Lambda init (import + build), slowest handler",
        f"{total:.0f} ms ({name}, {times_bare:.1f}x a bare interpreter start)",
        "<= 250 ms",
        total <= 250,
    )


if __name__ == "__main__":
    main()
