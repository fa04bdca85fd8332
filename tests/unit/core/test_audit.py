"""Audit records: stdout in Cloud Logging format, real entries:write calls, and the fallback."""

import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from attestation_broker.audit.record import DecisionRecord
from attestation_broker.audit.sinks import CloudLoggingSink, FallbackSink, MemorySink, StdoutSink

RECORD = DecisionRecord(
    correlation_id="c-1",
    route="/v1/attest/snp",
    kind="snp",
    verdict="affirming",
    latency_ms=1.5,
    evidence_sha256="ab" * 32,
    claims_summary={"tee": "sev-snp"},
    token_jti="j1",
    collateral=({"type": "vcek", "source": "memory"},),
    trace="0123456789abcdef",
)
FAILED = DecisionRecord(
    correlation_id="c-2",
    route="/v1/attest/snp",
    kind="snp",
    verdict="error",
    latency_ms=0.5,
    error_code="SNP_SIGNATURE_INVALID",
    http_status=403,
)


def test_stdout_sink_cloud_logging_shape() -> None:
    stream = io.StringIO()
    sink = StdoutSink(stream)
    sink.emit(RECORD)
    sink.emit(FAILED)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["severity"] == "INFO"
    assert first["logging.googleapis.com/labels"] == {"correlation_id": "c-1", "kind": "snp", "verdict": "affirming"}
    assert first["logging.googleapis.com/trace"] == "0123456789abcdef"
    assert first["httpRequest"]["status"] == 200 and first["httpRequest"]["latency"] == "0.001500s"
    assert first["decision"]["evidence_sha256"] == "ab" * 32 and first["decision"]["token_jti"] == "j1"
    assert second["severity"] == "WARNING" and second["decision"]["error_code"] == "SNP_SIGNATURE_INVALID"
    assert "SNP_SIGNATURE_INVALID" in second["message"]


@contextmanager
def logging_api(status: int = 200) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    calls: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            calls.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            payload = b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def _sink(endpoint: str) -> CloudLoggingSink:
    from google.auth.credentials import AnonymousCredentials

    return CloudLoggingSink(
        project="proj-1",
        credentials=AnonymousCredentials(),
        api_endpoint=endpoint,
        resource_type="cloud_run_revision",
        resource_labels={"project_id": "proj-1", "service_name": "broker"},
    )


def test_cloud_logging_sink_writes_real_entries() -> None:
    with logging_api() as (endpoint, calls):
        _sink(endpoint).emit(RECORD)
    assert len(calls) == 1 and calls[0]["path"].split("?")[0] == "/v2/entries:write"
    # The library may prepend one diagnostic entry; ours is the one with the decision.
    (entry,) = [e for e in calls[0]["body"]["entries"] if "decision" in e.get("jsonPayload", {})]
    assert entry["logName"] == "projects/proj-1/logs/attestation-broker"
    assert entry["resource"] == {
        "type": "cloud_run_revision",
        "labels": {"project_id": "proj-1", "service_name": "broker"},
    }
    assert entry["severity"] == "INFO"
    assert entry["labels"]["correlation_id"] == "c-1"
    assert entry["trace"] == "projects/proj-1/traces/0123456789abcdef"
    assert entry["httpRequest"]["status"] == 200
    assert entry["jsonPayload"]["decision"]["evidence_sha256"] == "ab" * 32


def test_failing_sink_falls_back_and_counts() -> None:
    with logging_api(status=500) as (endpoint, calls):
        fallback = MemorySink()
        sink = FallbackSink(_sink(endpoint), fallback)
        sink.emit(FAILED)
    assert calls, "the primary sink was really called"
    assert sink.failures == 1
    assert fallback.records == [FAILED]


def test_unreachable_logging_api_never_fails_request() -> None:
    fallback = MemorySink()
    sink = FallbackSink(_sink("http://127.0.0.1:9"), fallback)
    sink.emit(RECORD)
    assert sink.failures == 1 and fallback.records == [RECORD]
