"""Tiny benchmark harness shared by every bench script: median wall time over repeated calls.

Benchmarks print numbers; they never assert on them (speed is measured, not tested).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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


def report(title: str, rows: list[tuple[str, float]], *, floor: str | None = None) -> None:
    """Print rows of (label, median µs); with ``floor`` naming a row, add the ratio to it and ops/s."""
    base = dict(rows).get(floor) if floor else None
    print(f"== {title}")
    for label, us in rows:
        ratio = f"  {us / base:5.2f}x floor" if base else ""
        print(f"  {label:<48} {us:10.1f} µs  {1e6 / us:9.0f}/s{ratio}")
