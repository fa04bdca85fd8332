"""The last step of ``make bench``: the performance targets (README "Tests and benchmarks") with
what this run measured, each row written by the bench script that measured it (:func:`bench.harness.record`).

Run: ``.venv/bin/python -m bench.summary``. Prints the table and the number of targets not met; exits 0 either way
(speed is measured, not tested). A row no script recorded in this run is shown as "not measured".
"""

from __future__ import annotations

import json

from bench.harness import RESULTS, ROWS


def main() -> None:
    try:
        rows = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        rows = {}
    print("== targets (this run)")
    print(f"  {'what':<48} {'measured':<58} {'target':<34} status")
    missed = 0
    for name in ROWS:
        row = rows.get(name)
        if row is None:
            print(f"  {name:<48} {'not measured':<58} {'':<34} -")
            missed += 1
            continue
        status = "met" if row["met"] else "NOT met"
        missed += 0 if row["met"] else 1
        print(f"  {name:<48} {row['value']:<58} {row['target']:<34} {status}")
    print(f"  {len(ROWS) - missed} of {len(ROWS)} targets met in this run")


if __name__ == "__main__":
    main()
