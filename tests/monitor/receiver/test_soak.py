"""Soak: worker processes exporting with the SDK and a hostile client, against one monitor.

After it, every span the monitor acknowledged is in its store, its memory stayed within a
stated bound, and ``/metrics`` parses.
"""

from __future__ import annotations

import gzip
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from tasklens.monitor.ingest.receiver import DEFAULT_MEMORY_BUDGET, JSON, PROTOBUF
from tests.monitor.receiver.load import monitor_process, span_batch
from tests.monitor.receiver.memory import MIB, peak_rss_mib, rss_mib
from tests.monitor.receiver.test_metrics_exposition import HOSTILE_KEYS, _counter_request

#: Worker processes exporting at once.
WORKERS = 3
#: How long they export, in seconds.
SOAK_SECONDS = 60.0
#: Longest a worker may take to flush and exit after that, in seconds.
WORKER_EXIT_DEADLINE = 90.0
#: Most the monitor's resident memory may grow above its idle size, in MiB: one memory budget
#: of requests in flight, plus the store's page cache and the interpreter's overhead.
RSS_BOUND_MIB = DEFAULT_MEMORY_BUDGET / MIB + 256


def _hostile_bodies() -> list[tuple[str, bytes, dict[str, str]]]:
    """Requests that must each be refused or cut, never cost anyone else anything."""
    unstorable = ExportTraceServiceRequest.FromString(span_batch(os.urandom(16), 10))
    unstorable.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**63
    huge = ExportTraceServiceRequest.FromString(span_batch(os.urandom(16), 1))
    for index in range(50_000):
        huge.resource_spans[0].scope_spans[0].spans[0].attributes.add(key=f"a{index}").value.int_value = index
    deep = '{"kvlistValue":{"values":[{"key":"k","value":' * 5000 + '{"stringValue":"x"}' + "}]}}" * 5000
    proto, gz = {"Content-Type": PROTOBUF}, {"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}
    return [
        ("/v1/traces", gzip.compress(b"\x00" * (63 * MIB), 9), gz),
        ("/v1/traces", unstorable.SerializeToString(), proto),
        ("/v1/traces", huge.SerializeToString(), proto),
        (
            "/v1/traces",
            f'{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"a","value":{deep}}}]}}}}]}}'.encode(),
            {"Content-Type": JSON},
        ),
        ("/v1/metrics", _counter_request([HOSTILE_KEYS]).SerializeToString(), proto),
        ("/v1/metrics", _counter_request([{"id": str(i)} for i in range(3000)]).SerializeToString(), proto),
        ("/api/runs", b"", {"Host": "attacker.example"}),
    ]


class HostileClient(threading.Thread):
    """Sends the hostile requests over and over, two at a time, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}
        self.server_errors: list[str] = []

    def run(self) -> None:
        bodies = _hostile_bodies()
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                for path, body, headers in bodies:
                    method = "GET" if path.startswith("/api") else "POST"
                    try:
                        response = client.request(method, f"{self.url}{path}", content=body, headers=headers)
                    except httpx.TransportError:
                        continue
                    self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                    if response.status_code >= 500 and response.status_code != 503:
                        self.server_errors.append(f"{path}: {response.status_code}")


@pytest.mark.slow
def test_workers_and_a_hostile_client_against_one_monitor(tmp_path: Path) -> None:
    store = tmp_path / "telemetry.db"
    with monitor_process(store) as (process, url):
        idle = rss_mib(process.pid)
        hostile = [HostileClient(url) for _ in range(2)]
        for client in hostile:
            client.start()
        acknowledged_files = [tmp_path / f"acknowledged-{index}.txt" for index in range(WORKERS)]
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.monitor.receiver.soak_worker",
                    url,
                    str(path),
                    str(SOAK_SECONDS),
                ],
                cwd=Path(__file__).resolve().parents[3],
            )
            for path in acknowledged_files
        ]
        try:
            for worker in workers:
                assert worker.wait(timeout=SOAK_SECONDS + WORKER_EXIT_DEADLINE) == 0
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
            for client in hostile:
                client.stop.set()
            for client in hostile:
                client.join(timeout=120)
        peak = peak_rss_mib(process.pid)
        scrape = httpx.get(f"{url}/metrics", timeout=30)

    acknowledged = {line for path in acknowledged_files if path.exists() for line in path.read_text().split()}
    with sqlite3.connect(store) as conn:
        stored = {row[0] for row in conn.execute("SELECT span_id FROM spans WHERE service = 'soak-worker'")}
    lost = acknowledged - stored
    statuses = {status: n for client in hostile for status, n in client.statuses.items()}

    assert len(acknowledged) > 10_000, f"only {len(acknowledged)} spans acknowledged"
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged spans lost"
    assert peak - idle < RSS_BOUND_MIB, f"RSS grew by {peak - idle:.0f} MiB (idle {idle:.0f} MiB)"
    assert scrape.status_code == 200
    families = {family.name for family in text_string_to_metric_families(scrape.text)}
    assert "tasklens_receiver_dropped_series" in families
    assert not [error for client in hostile for error in client.server_errors], statuses
    print(f"soak: {len(acknowledged)} spans acknowledged, none lost, RSS +{peak - idle:.0f} MiB, {statuses}")
