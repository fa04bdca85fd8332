"""Bounded mutation fuzzing of every evidence kind inside ``make test``, plus the regression corpus.

``FUZZ_EXAMPLES`` sets the inputs per kind (default 4000: about 35 s for all eight kinds);
``make fuzz`` runs the same engine for ``FUZZ_SECONDS`` per kind. Passing means: no untyped exception,
no 500-class error, no input slower than 1 s, and bounded memory growth over the run.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from tests.fuzz.engine import run
from tests.fuzz.harness import check, corpus_files, load
from tests.fuzz.seeds import KINDS, seeds

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4000"))
MAX_GROWTH_MB = 256


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.mark.parametrize("kind", KINDS)
def test_every_seed_reaches_its_verifier(kind: str) -> None:
    """The seeds are real vectors that verify, so mutations start from inputs that pass every check."""
    verified = 0
    for seed in seeds(kind):
        try:
            seed.verifier.verify(seed.submission, seed.make_ctx())
            verified += 1
        except Exception as exc:  # noqa: BLE001 - one seed stops at Intel collateral on purpose
            assert getattr(exc, "status", 500) == 503, (seed.name, exc)
    assert verified >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_mutations_only_raise_typed_errors(kind: str) -> None:
    before = _rss_mb()
    count = run(kind, EXAMPLES)
    assert count >= min(EXAMPLES, 50)
    growth = _rss_mb() - before
    assert growth < MAX_GROWTH_MB, f"{kind}: resident memory grew {growth:.0f} MB over {count} inputs"


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_inputs_are_typed(path: Path) -> None:
    seed, submission, found = load(path)
    finding = check(seed, submission, seed.make_ctx())
    assert finding is None, f"{path.name} (first found as {found}) regressed: {finding.what}"
