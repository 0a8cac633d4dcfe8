"""Values no store column holds are refused before the writer, and never cost other rows."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from tasklens import semconv
from tasklens.monitor.store import RetentionPolicy, StoreWriter, log_rows, metric_rows, span_rows
from tests.monitor.store.spans import SpanFactory

#: A valid ``fixed64`` that no SQLite INTEGER holds.
TOO_BIG = 2**63


def _stored_trace_ids(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT trace_id FROM spans")}


def test_a_row_the_database_refuses_takes_no_other_batch_with_it(tmp_path: Path, spans: SpanFactory) -> None:
    writer = StoreWriter(tmp_path / "t.db", RetentionPolicy(max_age=None, max_size=None))
    made = set()
    # Queued before the writer starts, so that all of them share its first transaction.
    for _ in range(8):
        made.add(spans.run().trace_id)
        writer.write_spans(span_rows(spans.request()))
    spans.run()
    poisoned = span_rows(spans.request())
    good_row = poisoned.spans[0]
    poisoned = replace(poisoned, spans=[good_row, (*good_row[:7], TOO_BIG, *good_row[8:])])
    writer.write_spans(poisoned)
    writer.start()
    try:
        assert writer.flush(timeout=30)
    finally:
        writer.close()

    assert _stored_trace_ids(tmp_path / "t.db") == {*made, good_row[0]}
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT count(*) FROM spans").fetchone()[0] == 2 * len(made) + 1


def test_a_span_starting_beyond_2_63_is_rejected_with_a_reason(spans: SpanFactory) -> None:
    spans.run()
    request = spans.request()
    request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = TOO_BIG

    batch = span_rows(request)

    assert (len(batch.spans), batch.rejected) == (1, 1)
    assert "out of range" in batch.error


def test_a_retry_count_near_2_63_keeps_its_span_without_an_attempt(spans: SpanFactory) -> None:
    spans.run()
    request = spans.request()
    for span in request.resource_spans[0].scope_spans[0].spans:
        for pair in span.attributes:
            if pair.key == semconv.DRAMATIQ_MESSAGE_RETRIES:
                pair.value.int_value = 2**63 - 1

    batch = span_rows(request)

    assert batch.rejected == 0
    process = next(row for row in batch.spans if row[11] == semconv.OPERATION_PROCESS)
    assert process[15] is None


def test_non_finite_attributes_are_kept_as_text(spans: SpanFactory) -> None:
    spans.run()
    request = spans.request()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.append(KeyValue(key="ratio"))
    span.attributes[-1].value.double_value = float("nan")

    batch = span_rows(request)

    assert batch.rejected == 0
    assert '"ratio":"NaN"' in batch.spans[0][18]


def test_a_log_record_at_2_64_minus_1_is_rejected() -> None:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.add(time_unix_nano=1_700_000_000 * 10**9).body.string_value = "kept"
    records.add(time_unix_nano=2**64 - 1).body.string_value = "refused"

    batch = log_rows(request)

    assert [row[5] for row in batch.logs] == ["kept"]
    assert batch.rejected == 1
    assert "log record(s) with a value out of range" in batch.error


def test_histogram_points_with_unstorable_counts_or_sums_are_rejected() -> None:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="duration")
    now = 1_700_000_000 * 10**9
    metric.histogram.data_points.add(time_unix_nano=now, count=1, sum=0.5, bucket_counts=[1])
    metric.histogram.data_points.add(time_unix_nano=now, count=2**64 - 1, sum=0.5, bucket_counts=[1])
    metric.histogram.data_points.add(time_unix_nano=now, count=1, sum=float("inf"), bucket_counts=[1])
    metric.histogram.data_points.add(time_unix_nano=now, count=1, sum=1.0, bucket_counts=[2**64 - 1])

    batch = metric_rows(request)

    assert len(batch.points) == 1
    assert batch.rejected == 3
