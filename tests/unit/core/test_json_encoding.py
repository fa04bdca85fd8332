"""The broker's one hot-path JSON encoder (``jsonlimits.dumps``): orjson where it can, the standard encoder where
orjson refuses, and the same document either way."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from attestation_broker import jsonlimits
from attestation_broker.audit.record import DecisionRecord
from attestation_broker.audit.sinks import StdoutSink

CASES: list[tuple[str, Any, bool, bytes]] = [
    ("compact object", {"b": 1, "a": [True, None, 1.5]}, False, b'{"b":1,"a":[true,null,1.5]}'),
    ("sorted at every level", {"b": {"z": 1, "y": 2}, "a": 0}, True, b'{"a":0,"b":{"y":2,"z":1}}'),
    ("non-ASCII as UTF-8", {"subject": "Zürich"}, False, '{"subject":"Zürich"}'.encode()),
    # Refused by orjson, so encoded by json.dumps: same separators, non-ASCII escaped, still valid UTF-8 JSON.
    ("integer beyond 64 bits", {"n": 2**80, "s": "é"}, True, b'{"n":1208925819614629174706176,"s":"\\u00e9"}'),
    ("lone surrogate", {"s": "\ud800"}, False, b'{"s":"\\ud800"}'),
    ("non-string key", {1: "x"}, False, b'{"1":"x"}'),
]


@pytest.mark.parametrize(("name", "value", "sort_keys", "expected"), CASES, ids=[c[0] for c in CASES])
def test_dumps_bytes(name: str, value: Any, sort_keys: bool, expected: bytes) -> None:
    out = jsonlimits.dumps(value, sort_keys=sort_keys)
    assert out == expected
    out.decode("utf-8")  # always valid UTF-8
    assert json.loads(out) == json.loads(json.dumps(value, sort_keys=sort_keys))


def test_dumps_default_hook_in_both_encoders() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsonlimits.dumps({"t": when.date()}, default=str) == b'{"t":"2026-01-02"}'
    assert jsonlimits.dumps({"t": when.date(), "n": 2**70}, default=str) == (
        b'{"t":"2026-01-02","n":1180591620717411303424}'
    )
    with pytest.raises(TypeError):
        jsonlimits.dumps({"t": object()})


def test_stdout_sink_writes_one_json_line_with_non_ascii_and_surrogates() -> None:
    stream = io.StringIO()
    sink = StdoutSink(stream)
    for agent in ("curl/8 Zürich", "bad\udc80agent"):
        sink.emit(
            DecisionRecord(
                correlation_id="c1",
                route="/v1/attest/snp",
                method="POST",
                kind="snp",
                verdict="affirming",
                http_status=200,
                latency_ms=1.5,
                user_agent=agent,
            )
        )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0])["httpRequest"]["userAgent"] == "curl/8 Zürich"
    assert json.loads(lines[1])["httpRequest"]["userAgent"] == "bad\udc80agent"
