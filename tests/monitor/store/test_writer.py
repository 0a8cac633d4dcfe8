"""The writer batches, never blocks its callers, and says so when it is behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasklens.monitor.store import (
    RetentionPolicy,
    RunFilter,
    StoreBusy,
    StoreWriter,
    TelemetryStore,
    span_rows,
)
from tests.monitor.store.spans import SpanFactory


def test_a_writer_that_is_behind_refuses_new_batches(tmp_path: Path, spans: SpanFactory) -> None:
    writer = StoreWriter(tmp_path / "t.db", RetentionPolicy(), max_pending=1)  # never started
    spans.run()
    batch = span_rows(spans.request())
    writer.write_spans(batch)

    with pytest.raises(StoreBusy):
        writer.write_spans(batch)


def test_many_small_batches_all_land(tmp_path: Path, spans: SpanFactory) -> None:
    store = TelemetryStore.open(tmp_path / "t.db")
    try:
        made = set()
        for _ in range(200):
            made.add(spans.run().trace_id)
            store.writer.write_spans(span_rows(spans.request()))
        assert store.writer.flush(timeout=30)

        listed = store.reader.runs(RunFilter(limit=500))["items"]

        assert {item["trace_id"] for item in listed} == made
    finally:
        store.close()


def test_spans_with_invalid_ids_are_counted_as_rejected(spans: SpanFactory) -> None:
    spans.run()
    request = spans.request()
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01\x02"
    request.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x00" * 8

    batch = span_rows(request)

    assert batch.rejected == 2
    assert batch.spans == []
    assert "trace id" in batch.error
