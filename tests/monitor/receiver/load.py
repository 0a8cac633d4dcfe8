"""Export load for the durability and soak tests: batches of spans with one trace id each, sent
from threads that remember which batches the monitor acknowledged."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tasklens import semconv
from tests.monitor.processes import free_port, wait_for_http

#: Spans in one exported batch, as the SDK's batch processor sends them by default.
BATCH_SPANS = 512


def span_batch(trace_id: bytes, spans: int = BATCH_SPANS) -> bytes:
    """An ``ExportTraceServiceRequest`` of ``spans`` process spans of one trace, serialized."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add(key="service.name")
    attribute.value.string_value = "load-worker"
    scope = resource_spans.scope_spans.add()
    now = time.time_ns()
    for index in range(spans):
        span = scope.spans.add(
            trace_id=trace_id,
            span_id=(index + 1).to_bytes(8, "big"),
            name="process load",
            kind=Span.SPAN_KIND_CONSUMER,
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1_000_000,
        )
        operation = span.attributes.add(key=semconv.MESSAGING_OPERATION_TYPE)
        operation.value.string_value = semconv.OPERATION_PROCESS
    return request.SerializeToString()


class Exporter(threading.Thread):
    """Sends batches until told to stop or the monitor goes away; records those answered 200.

    Parameters:
      url(str): The monitor's base URL.
      headers(dict): Extra request headers (the token).
    """

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.headers = {"Content-Type": "application/x-protobuf", **(headers or {})}
        self.acknowledged: list[str] = []
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                trace_id = os.urandom(16)
                try:
                    response = client.post(
                        f"{self.url}/v1/traces", content=span_batch(trace_id), headers=self.headers
                    )
                except httpx.TransportError:
                    if self.stop.is_set():
                        return
                    time.sleep(0.05)
                    continue
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 200:
                    self.acknowledged.append(trace_id.hex())


def missing_batches(store: Path, trace_ids: list[str]) -> list[str]:
    """The acknowledged batches whose spans are not all in the store."""
    with sqlite3.connect(store) as conn:
        counts = dict(conn.execute("SELECT trace_id, count(*) FROM spans GROUP BY trace_id").fetchall())
    return [trace_id for trace_id in trace_ids if counts.get(trace_id, 0) < BATCH_SPANS]


@contextmanager
def monitor_process(store: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``tasklens monitor --store STORE ARGS`` on a free port; yields the process and its URL.
    It is killed at the end if it still runs."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tasklens", "monitor", "--store", str(store), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", process)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
