"""Audit sinks: structured stdout in Cloud Logging's format, the Cloud Logging API, and a fallback.

The stdout format follows Cloud Logging's structured-logging special fields (``severity``,
``message``, ``logging.googleapis.com/labels``, ``logging.googleapis.com/trace``, ``httpRequest``);
everything else becomes ``jsonPayload``. :class:`CloudLoggingSink` writes the same record through
``google-cloud-logging`` with an explicit monitored resource, so the library never asks a metadata
server. :class:`FallbackSink` guarantees a failing sink neither fails the request nor drops the
record: it writes to the fallback and counts the failure.
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from attestation_broker import jsonlimits
from attestation_broker.audit.record import DecisionRecord

_SEVERITY = {"affirming": "INFO", "warning": "WARNING", "none": "NOTICE", "contraindicated": "WARNING"}


def severity_of(record: DecisionRecord) -> str:
    if record.verdict == "error":
        return "ERROR" if record.http_status >= 500 else "WARNING"
    return _SEVERITY.get(record.verdict, "INFO")


def message_of(record: DecisionRecord) -> str:
    if record.error_code:
        return f"attestation {record.kind or '-'} rejected: {record.error_code}"
    return f"attestation {record.kind or '-'} {record.verdict}"


def http_request_of(record: DecisionRecord) -> dict[str, Any]:
    request: dict[str, Any] = {
        "requestMethod": record.method,
        "requestUrl": record.route,
        "status": record.http_status,
        "latency": f"{record.latency_ms / 1000:.6f}s",
    }
    if record.user_agent:
        request["userAgent"] = record.user_agent
    if record.remote_ip:
        request["remoteIp"] = record.remote_ip
    return request


def labels_of(record: DecisionRecord) -> dict[str, str]:
    return {"correlation_id": record.correlation_id, "kind": record.kind or "-", "verdict": record.verdict}


class Sink(Protocol):
    def emit(self, record: DecisionRecord) -> None: ...


class StdoutSink:
    """One JSON line per record on a stream (stdout by default), safe across threads."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def emit(self, record: DecisionRecord) -> None:
        entry: dict[str, Any] = {
            "severity": severity_of(record),
            "message": message_of(record),
            "time": datetime.now(UTC).isoformat(),
            "logging.googleapis.com/labels": labels_of(record),
            "httpRequest": http_request_of(record),
            "decision": record.payload(),
        }
        if record.trace:
            entry["logging.googleapis.com/trace"] = record.trace
        line = jsonlimits.dumps(entry, default=str).decode()
        with self._lock:
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()


class CloudLoggingSink:
    """Google Cloud Logging API (``entries:write``) via google-cloud-logging, imported lazily."""

    def __init__(
        self,
        *,
        project: str,
        log_name: str = "attestation-broker",
        resource_type: str = "global",
        resource_labels: dict[str, str] | None = None,
        credentials: Any = None,
        api_endpoint: str | None = None,
    ) -> None:
        from google.cloud import logging as gcl  # lazy: 200-450 ms of import
        from google.cloud.logging import Resource

        options = {"api_endpoint": api_endpoint} if api_endpoint else None
        # HTTP transport: no gRPC channel to warm, and tests can observe real entries:write calls.
        client = gcl.Client(  # type: ignore[no-untyped-call]
            project=project, credentials=credentials, _use_grpc=False, client_options=options
        )
        self._resource = Resource(type=resource_type, labels=resource_labels or {"project_id": project})
        # Passing the resource here stops the library from probing the metadata server for one.
        self._logger = client.logger(log_name, resource=self._resource)  # type: ignore[no-untyped-call]
        self._project = project

    def emit(self, record: DecisionRecord) -> None:
        trace = f"projects/{self._project}/traces/{record.trace}" if record.trace else None
        self._logger.log_struct(
            {"message": message_of(record), "decision": record.payload()},
            severity=severity_of(record),
            labels=labels_of(record),
            resource=self._resource,
            http_request=http_request_of(record),
            trace=trace,
        )


class FallbackSink:
    def __init__(self, primary: Sink, fallback: Sink) -> None:
        self.primary = primary
        self.fallback = fallback
        self.failures = 0
        self._lock = threading.Lock()

    def emit(self, record: DecisionRecord) -> None:
        try:
            self.primary.emit(record)
        except Exception:  # noqa: BLE001 - the record must survive any sink failure
            with self._lock:
                self.failures += 1
            self.fallback.emit(record)


class MemorySink:
    """Keeps records in memory (tests and the CLI's single decision)."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []

    def emit(self, record: DecisionRecord) -> None:
        self.records.append(record)
