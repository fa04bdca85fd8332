"""Tiny benchmark harness shared by every bench script: median wall time over repeated calls.

Benchmarks print numbers; they never assert on them (speed is measured, not tested).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def median_us(fn: Callable[[], object], *, runs: int = 200, warmup: int = 20) -> float:
    """Median latency of ``fn()`` in microseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000.0


def interleaved_us(fns: dict[str, Callable[[], object]], *, runs: int = 300, rounds: int = 10) -> dict[str, float]:
    """Median latency of each function in microseconds, measured in ``rounds`` alternating slices of ``runs / rounds``
    calls each: on a shared machine the load drifts over seconds, and a ratio of two medians taken one after the
    other measures the drift as much as the code."""
    samples: dict[str, list[int]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(10):
            fn()
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(per_round):
                start = time.perf_counter_ns()
                fn()
                samples[name].append(time.perf_counter_ns() - start)
    return {name: statistics.median(values) / 1000.0 for name, values in samples.items()}


def report(title: str, rows: list[tuple[str, float]], *, floor: str | None = None) -> None:
    """Print rows of (label, median µs); with ``floor`` naming a row, add the ratio to it and ops/s."""
    base = dict(rows).get(floor) if floor else None
    print(f"== {title}")
    for label, us in rows:
        ratio = f"  {us / base:5.2f}x floor" if base else ""
        print(f"  {label:<48} {us:10.1f} µs  {1e6 / us:9.0f}/s{ratio}")


# The performance target table (README "Tests and benchmarks"): each bench script adds the rows it measured with
# :func:`record`; ``bench.summary`` (the last step of ``make bench``) prints them together, in this order.
RESULTS = Path(os.environ.get("BENCH_RESULTS", Path(__file__).resolve().parent.parent / "build" / "bench-results.json"))
ROWS = (
    "server: POST /v1/attest/snp at 64 connections",
    "server: /healthz with 256 slow clients",
    "server: sustained load",
    "Lambda init (import + build), slowest handler",
    "Lambda artifact",
    "TDX verify, cached collateral",
    "TDX beside dcap-qvl",
    "gcp-vtpm verify, boot log seen before",
    "gcp-vtpm verify, new boot log",
    "SNP verify",
    "Nitro verify",
    "TPM verify (Azure vTPM quote)",
)


def record(row: str, value: str, target: str, met: bool) -> None:
    """Add (or replace) one row of the target table in :data:`RESULTS`."""
    if row not in ROWS:
        raise ValueError(f"unknown target row {row!r}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        rows = {}
    rows[row] = {"value": value, "target": target, "met": met}
    RESULTS.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
