"""Retention drops the oldest data first, by age and by size, and keeps the rest."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tasklens.brokers.base import BrokerSnapshot, QueueStats
from tasklens.monitor.store import (
    RetentionPolicy,
    RunFilter,
    TelemetryStore,
    log_rows,
    metric_rows,
    parse_duration,
    parse_size,
    span_rows,
)
from tasklens.monitor.store import writer as writer_module
from tasklens.monitor.store.retention import used_bytes
from tests.monitor.store.conftest import Clock
from tests.monitor.store.spans import SpanFactory

HOUR = 3600.0
DAY = 86400.0


def _trace_ids(store: TelemetryStore) -> set[str]:
    return {item["trace_id"] for item in store.reader.runs(RunFilter(limit=500))["items"]}


def _log_request(at: float, trace_id: str, body: str) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    record = (
        request.resource_logs.add()
        .scope_logs.add()
        .log_records.add(time_unix_nano=int(at * 1e9), trace_id=bytes.fromhex(trace_id), severity_text="INFO")
    )
    record.body.string_value = body
    return request


def _thread_count_request(at: float, instance: str) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="service.instance.id", value=AnyValue(string_value=instance))
    metric = resource.scope_metrics.add().metrics.add(name="process.thread.count")
    metric.gauge.data_points.add(time_unix_nano=int(at * 1e9), as_int=4)
    return request


def test_age_retention_drops_spans_logs_metrics_rollups_and_snapshots_older_than_the_limit(
    tmp_path: Path, clock: Clock, spans: SpanFactory
) -> None:
    store = TelemetryStore.open(tmp_path / "t.db", RetentionPolicy(max_age=HOUR, max_size=None), clock=clock)
    try:
        old = spans.run("old_actor", start=clock.now - 2 * HOUR)
        new = spans.run("new_actor", start=clock.now - 600)
        store.writer.write_spans(span_rows(spans.request()))
        for at in (clock.now - 2 * HOUR, clock.now - 600):
            snapshot = BrokerSnapshot(
                [QueueStats("default", 1, 0, 0, 0, 0.0)], workers=1, read_at=at, duration=0.0
            )
            store.writer.write_broker_snapshot(snapshot)
        store.writer.write_logs(log_rows(_log_request(clock.now - 2 * HOUR, old.trace_id, "old line")))
        store.writer.write_logs(log_rows(_log_request(clock.now - 600, new.trace_id, "new line")))
        store.writer.write_metrics(metric_rows(_thread_count_request(clock.now - 2 * HOUR, "old-worker")))
        store.writer.write_metrics(metric_rows(_thread_count_request(clock.now - 600, "new-worker")))

        assert store.writer.enforce_retention(timeout=30)

        assert _trace_ids(store) == {new.trace_id}
        assert store.reader.trace(old.trace_id) is None
        assert [row["actor"] for row in store.reader.actors(DAY)["items"]] == ["new_actor"]
        kept_times = {point["t"] for point in store.reader.queue_history(DAY)["items"]}
        assert len(kept_times) == 1
        assert kept_times.pop() >= clock.now - HOUR - 60
        new_trace = store.reader.trace(new.trace_id)
        assert new_trace is not None and [log["body"] for log in new_trace["logs"]] == ["new line"]
        # The old process's metrics are gone; the span factory's process still has its new run.
        kept = [process["instance"] for process in store.reader.processes(DAY)["items"]]
        assert kept == ["new-worker", "worker-1"]
    finally:
        store.close()


def test_age_retention_follows_the_clock(tmp_path: Path, clock: Clock, spans: SpanFactory) -> None:
    store = TelemetryStore.open(tmp_path / "t.db", RetentionPolicy(max_age=HOUR, max_size=None), clock=clock)
    try:
        run = spans.run(start=clock.now - 60)
        store.writer.write_spans(span_rows(spans.request()))
        assert store.writer.enforce_retention(timeout=30)
        assert _trace_ids(store) == {run.trace_id}

        clock.now += HOUR
        assert store.writer.enforce_retention(timeout=30)

        assert store.reader.trace(run.trace_id) is None
    finally:
        store.close()


def test_size_retention_drops_the_oldest_runs_until_the_store_fits(
    tmp_path: Path, clock: Clock, spans: SpanFactory
) -> None:
    path = tmp_path / "t.db"
    unlimited = TelemetryStore.open(path, RetentionPolicy(max_age=None, max_size=None), clock=clock)
    runs = [spans.run(f"actor_{i % 3}", start=clock.now - 3000 + i) for i in range(3000)]
    unlimited.writer.write_spans(span_rows(spans.request()))
    unlimited.close()
    with sqlite3.connect(path) as conn:
        full = used_bytes(conn)

    limit = full // 2
    store = TelemetryStore.open(path, RetentionPolicy(max_age=None, max_size=limit), clock=clock)
    try:
        assert store.writer.enforce_retention(timeout=30)
        kept = _trace_ids(store)
    finally:
        store.close()

    with sqlite3.connect(path) as conn:
        assert used_bytes(conn) <= limit
        stored = {row[0] for row in conn.execute("SELECT trace_id FROM spans WHERE operation = 'process'")}
    assert runs[-1].trace_id in kept
    assert runs[0].trace_id not in stored
    assert 0 < len(stored) < len(runs)
    # Oldest first: every run kept started after every run dropped.
    kept_positions = [i for i, run in enumerate(runs) if run.trace_id in stored]
    assert kept_positions == list(range(kept_positions[0], len(runs)))


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", DAY), ("90m", 5400.0), ("7d", 7 * DAY), ("3600", HOUR), ("1.5h", 5400.0)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("1GB", 10**9), ("500MB", 5 * 10**8), ("2GiB", 2 * 2**30), ("4096", 4096)]
)
def test_sizes_parse(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "h", "-1h", "0", "10x", "1 parsec"])
def test_invalid_durations_and_sizes_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="like 24h"):
        parse_duration(text)
    with pytest.raises(ValueError, match="like 1GB"):
        parse_size(text)


def test_a_retention_beyond_ten_years_is_refused() -> None:
    with pytest.raises(ValueError, match="10 years"):
        RetentionPolicy(max_age=20000 * 7 * 86400.0)


def test_a_failing_retention_pass_backs_off_instead_of_spinning(
    tmp_path: Path, spans: SpanFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def failing_step(*args: object) -> bool:
        calls.append(args)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(writer_module, "enforce_step", failing_step)
    store = TelemetryStore.open(tmp_path / "t.db", RetentionPolicy(max_age=HOUR, max_size=10**9))
    try:
        deadline = time.monotonic() + 10
        while not calls:
            assert time.monotonic() < deadline, "retention never ran"
            time.sleep(0.01)
        for _ in range(20):
            spans.run()
            store.writer.write_spans(span_rows(spans.request())).result(timeout=10)
        assert store.writer.flush(timeout=10)
    finally:
        store.close()

    # Writes go on; the failure is tried again only after a pause, and logged once.
    assert len(calls) == 1
    assert len([r for r in caplog.records if "Dropping old telemetry" in r.getMessage()]) == 1
