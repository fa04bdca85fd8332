"""The Hypothesis-driven mutation loop shared by the bounded suite run and ``make fuzz``.

Hypothesis supplies the randomness (``st.randoms``), so every failing input shrinks to a small mutation
sequence and replays from Hypothesis' example database; the mutators are in :mod:`tests.fuzz.mutate`
and the oracle in :mod:`tests.fuzz.harness`. Each generated input picks one real seed of the kind,
applies one or two structure-aware mutations and is verified with a fresh-per-seed context.
"""

from __future__ import annotations

from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyFailure

from tests.fuzz.harness import Finding, check
from tests.fuzz.mutate import mutate_submission
from tests.fuzz.seeds import seeds


class FuzzFinding(AssertionError):
    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.kind}/{finding.seed}: {finding.what}")
        self.finding = finding


def run(kind: str, examples: int, *, seed: int | None = None) -> int:
    """Run ``examples`` mutated inputs of ``kind``; raise :class:`FuzzFinding` on the first finding."""
    pool = seeds(kind)
    contexts = [s.make_ctx() for s in pool]
    count = [0]

    @settings(
        max_examples=examples,
        deadline=None,  # the oracle times each verification itself (1 s), without Hypothesis' re-runs
        database=None,
        derandomize=seed is not None,
        suppress_health_check=list(HealthCheck),
    )
    @given(index=st.integers(0, len(pool) - 1), rnd=st.randoms(use_true_random=False), twice=st.booleans())
    def body(index: int, rnd: Random, twice: bool) -> None:
        count[0] += 1
        submission = mutate_submission(rnd, pool[index].submission)
        if twice:
            submission = mutate_submission(rnd, submission)
        finding = check(pool[index], submission, contexts[index])
        if finding is not None:
            raise FuzzFinding(finding)

    try:
        body()
    except FlakyFailure as flaky:
        # An input that failed once and not on Hypothesis' replay is still a finding: report and keep it.
        found = next((e for e in flaky.exceptions if isinstance(e, FuzzFinding)), None)
        if found is None:
            raise
        raise found from None
    return count[0]
