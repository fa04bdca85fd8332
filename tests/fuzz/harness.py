"""The fuzzing oracle and the regression corpus.

An input passes when verification either succeeds or raises a :class:`BrokerError` of a 4xx status or
503 (a vendor endpoint the in-process fetcher has no recording for), within :data:`MAX_SECONDS`. Anything
else — an untyped exception, a 500-class error (INTERNAL_ERROR, CONFIG_INVALID), or a slow input — is a
finding. Findings are kept as JSON files under ``tests/fuzz/corpus/<kind>/`` and replayed by the suite.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attestation_broker.errors import BrokerError, Unavailable
from attestation_broker.verifier import Submission, VerifyContext

from tests.fuzz.seeds import Seed, seeds

CORPUS = Path(__file__).resolve().parent / "corpus"
MAX_SECONDS = 1.0


@dataclass(frozen=True)
class Finding:
    kind: str
    seed: str
    what: str  # exception type and the innermost project frame, or "slow: 1.2 s"
    submission: Submission


def _site(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "attestation_broker" in f.filename]
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {last.filename.split('attestation_broker/')[-1]}:{last.lineno}"


def check(seed: Seed, submission: Submission, ctx: VerifyContext) -> Finding | None:
    # CPU time of this thread, not wall time: the bound is on work an input causes, and a loaded machine (CI, a
    # fuzz run at low priority beside the suite) would otherwise turn scheduling delays into "slow" findings that
    # do not reproduce. Verification here is offline, so no time is spent waiting on I/O.
    started = time.thread_time()
    try:
        seed.verifier.verify(submission, ctx)
    except BrokerError as exc:
        if exc.status >= 500 and not isinstance(exc, Unavailable):
            return Finding(seed.kind, seed.name, f"{exc.code.name} ({exc.status})", submission)
    except Exception as exc:  # noqa: BLE001 - the oracle: anything untyped is a finding
        return Finding(seed.kind, seed.name, _site(exc), submission)
    elapsed = time.thread_time() - started
    if elapsed > MAX_SECONDS:
        return Finding(seed.kind, seed.name, f"slow: {elapsed:.2f} s", submission)
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encode(finding: Finding) -> dict[str, Any]:
    sub = finding.submission
    return {
        "kind": finding.kind,
        "seed": finding.seed,
        "found": finding.what,
        "evidence": _b64(sub.evidence),
        "extras": [_b64(e) for e in sub.extras],
        "fields": dict(sub.fields),
    }


def save(finding: Finding, corpus: Path = CORPUS) -> Path:
    doc = encode(finding)
    text = json.dumps(doc, sort_keys=True, indent=1, ensure_ascii=True)
    name = hashlib.sha256(text.encode()).hexdigest()[:16] + ".json"
    folder = corpus / finding.kind.replace("-", "_")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text + "\n")
    return path


def load(path: Path) -> tuple[Seed, Submission, str]:
    doc = json.loads(path.read_text())
    seed = next(s for s in seeds(doc["kind"]) if s.name == doc["seed"])
    sub = Submission(
        base64.b64decode(doc["evidence"]),
        tuple(base64.b64decode(e) for e in doc["extras"]),
        doc["fields"],
        seed.submission.binding,
    )
    return seed, sub, str(doc["found"])


def corpus_files(corpus: Path = CORPUS) -> list[Path]:
    return sorted(corpus.glob("*/*.json"))
