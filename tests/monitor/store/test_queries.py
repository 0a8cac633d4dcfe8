"""The store answers the dashboard's questions with what was ingested."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot, QueueStats
from tasklens.monitor.store import (
    InvalidQuery,
    RetentionPolicy,
    RunFilter,
    TelemetryStore,
    metric_rows,
    span_rows,
)
from tests.monitor.store.conftest import Clock
from tests.monitor.store.spans import SpanFactory

HOUR = 3600.0


def ingest(store: TelemetryStore, spans: SpanFactory) -> None:
    store.writer.write_spans(span_rows(spans.request()))
    assert store.writer.flush(timeout=10)


def test_runs_are_listed_newest_first_with_their_task_fields(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    older = spans.run("send_welcome", "emails", start=clock.now - 60, duration=0.02)
    newer = spans.run(
        "charge_payment",
        "payments",
        start=clock.now - 30,
        duration=0.2,
        retries=2,
        error=ValueError("declined"),
    )
    ingest(store, spans)

    page = store.reader.runs(RunFilter())

    assert [item["trace_id"] for item in page["items"]] == [newer.trace_id, older.trace_id]
    failed = page["items"][0]
    assert failed["span_id"] == newer.span_id
    assert failed["actor"] == "charge_payment"
    assert failed["queue"] == "payments"
    assert failed["status"] == "error"
    assert failed["error_type"] == "ValueError"
    assert failed["attempt"] == 3
    assert failed["message_id"] == newer.message_id
    assert failed["duration"] == pytest.approx(0.2, abs=1e-6)
    assert failed["time"] == pytest.approx(newer.start, abs=1e-6)
    assert (failed["service"], failed["instance"]) == ("billing-worker", "worker-1")
    assert page["items"][1]["status"] == "ok"
    assert page["next_cursor"] is None


def test_runs_filter_by_actor_queue_status_time_and_text(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    welcome = spans.run("send_welcome", "emails", start=clock.now - 300)
    charge = spans.run("charge_payment", "payments", start=clock.now - 200, error=KeyError("card 42 expired"))
    report = spans.run("generate_report", "reports", start=clock.now - 100, duration=2.0)
    ingest(store, spans)

    def traces(**filters: object) -> list[str]:
        return [item["trace_id"] for item in store.reader.runs(RunFilter(**filters))["items"]]  # type: ignore[arg-type]

    assert traces(actor="send_welcome") == [welcome.trace_id]
    assert traces(queue="reports") == [report.trace_id]
    assert traces(status="error") == [charge.trace_id]
    assert traces(status="ok") == [report.trace_id, welcome.trace_id]
    assert traces(since=clock.now - 250) == [report.trace_id, charge.trace_id]
    assert traces(until=clock.now - 250) == [welcome.trace_id]
    assert traces(text=welcome.message_id) == [welcome.trace_id]
    assert traces(text=report.trace_id.upper()) == [report.trace_id]
    assert traces(text="expired") == [charge.trace_id]
    assert traces(text="KeyErr") == [charge.trace_id]
    assert traces(text="report") == [report.trace_id]
    assert traces(text="100%_") == []
    assert traces(text="expired", status="ok") == []


def test_runs_pages_follow_cursors_without_gaps_or_repeats(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    made = [spans.run(start=clock.now - 100 + i).trace_id for i in range(7)]
    ingest(store, spans)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = store.reader.runs(RunFilter(limit=3, cursor=cursor))
        seen += [item["trace_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(made))


@pytest.mark.parametrize(
    "query",
    [RunFilter(limit=0), RunFilter(limit=501), RunFilter(status="maybe"), RunFilter(cursor="garbage")],
)
def test_runs_refuse_invalid_parameters(store: TelemetryStore, query: RunFilter) -> None:
    with pytest.raises(InvalidQuery):
        store.reader.runs(query)


def test_actors_have_rates_error_percent_percentiles_retries_and_dead_letters(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    for i in range(18):
        spans.run("charge_payment", "payments", start=clock.now - 600 + i, duration=0.1)
    spans.run(
        "charge_payment",
        "payments",
        start=clock.now - 500,
        duration=1.0,
        error=ValueError(),
        retry_scheduled=True,
    )
    spans.run(
        "charge_payment",
        "payments",
        start=clock.now - 400,
        duration=1.0,
        retries=3,
        error=ValueError(),
        dead_lettered=True,
    )
    spans.run("send_welcome", "emails", start=clock.now - 100, duration=0.01)
    ingest(store, spans)

    items = {item["actor"]: item for item in store.reader.actors(HOUR)["items"]}

    charge = items["charge_payment"]
    assert charge["queue"] == "payments"
    assert charge["runs"] == 20
    # The store holds about ten minutes of runs: the rate is over those, not over the hour.
    assert 600 <= charge["interval"] <= 660
    assert charge["rate"] == pytest.approx(20 / charge["interval"])
    # Of the 19 messages done, one failed for good; the retried attempt is not a failure yet.
    assert charge["error_pct"] == pytest.approx(100 / 19)
    assert charge["errors"] == 2
    assert charge["failed"] == 1
    assert charge["p50"] == pytest.approx(0.1, rel=0.05)
    assert charge["p95"] == pytest.approx(1.0, rel=0.05)
    assert charge["p99"] == pytest.approx(1.0, rel=0.05)
    assert charge["retries"] == 1
    assert charge["dead_letters"] == 1
    assert charge["queue_wait_p95"] is None
    assert items["send_welcome"]["runs"] == 1
    assert items["send_welcome"]["error_pct"] == 0.0


def test_actor_page_has_its_series_and_recent_runs(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    mine = [spans.run("generate_report", "reports", start=clock.now - 120 + i).trace_id for i in range(3)]
    spans.run("send_welcome", "emails", start=clock.now - 60)
    ingest(store, spans)

    page = store.reader.actor("generate_report", HOUR)

    assert page is not None
    assert page["stats"]["runs"] == 3
    assert [run["trace_id"] for run in page["recent_runs"]] == list(reversed(mine))
    assert sum(point["runs"] for point in page["series"]) == 3
    assert store.reader.actor("never_ran", HOUR) is None


def test_overview_series_start_with_the_data_and_count_runs_and_outcomes(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    spans.run("a", start=clock.now - 1800, error=RuntimeError())
    spans.run("a", start=clock.now - 1800)
    spans.run("b", start=clock.now - 60)
    spans.run("old", start=clock.now - 2 * HOUR)
    ingest(store, spans)

    overview = store.reader.overview(HOUR)

    series = overview["series"]
    assert overview["step"] == 60
    # The hour holds 30 minutes of data: the series covers those, not 30 minutes of zeros before.
    assert series[0]["t"] == (clock.now - 1800) // 60 * 60
    assert overview["since"] == series[0]["t"]
    assert 30 <= len(series) <= 32
    assert sum(point["runs"] for point in series) == 3
    assert sum(point["errors"] for point in series) == 1
    failing = next(point for point in series if point["errors"])
    assert failing["error_rate"] == pytest.approx(0.5)
    assert failing["throughput"] == pytest.approx(2 / 60)
    assert failing["p95"] is not None
    # A minute without runs has no error rate (nothing to fail), not 0 %.
    assert any(point["runs"] == 0 and point["error_rate"] is None for point in series)
    assert overview["worst_actors"][0]["actor"] == "a"
    assert "old" not in {row["actor"] for row in overview["worst_actors"]}
    assert overview["workers"] is None


def test_the_bucket_still_filling_is_divided_by_its_elapsed_time(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    clock.now = (clock.now // 60) * 60 + 24
    for i in range(18):
        spans.run("a", start=clock.now - 23 + i)
    spans.run("a", start=clock.now - 90)
    ingest(store, spans)

    series = store.reader.overview(HOUR)["series"]

    last = series[-1]
    assert last["partial"] is True and not any(point["partial"] for point in series[:-1])
    assert last["elapsed"] == pytest.approx(24)
    assert last["throughput"] == pytest.approx(18 / 24)
    recent = store.reader.overview(HOUR)["recent"]
    assert recent["runs"] == 19
    assert recent["throughput"] == pytest.approx(19 / recent["interval"])


def test_retried_dead_lettered_and_recovered_runs_are_distinct(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    retried = spans.run("charge", start=clock.now - 50, error=ValueError("busy"), retry_scheduled=True)
    recovered = spans.run("charge", start=clock.now - 40, retries=1, message_id=retried.message_id)
    dead = spans.run("charge", start=clock.now - 30, error=ValueError("no"), dead_lettered=True)
    failed = spans.run("charge", start=clock.now - 20, error=ValueError("x"))
    fine = spans.run("charge", start=clock.now - 10)
    ingest(store, spans)

    states = {run["span_id"]: run["state"] for run in store.reader.runs(RunFilter())["items"]}
    assert states == {
        retried.span_id: "retried",
        recovered.span_id: "succeeded_after_retry",
        dead.span_id: "dead_lettered",
        failed.span_id: "failed",
        fine.span_id: "ok",
    }
    for status, run in (
        ("retried", retried),
        ("succeeded_after_retry", recovered),
        ("dead_lettered", dead),
        ("failed", failed),
    ):
        assert [item["span_id"] for item in store.reader.runs(RunFilter(status=status))["items"]] == [
            run.span_id
        ]
    row = store.reader.actors(HOUR)["items"][0]
    assert (row["retries"], row["dead_letters"], row["failed"], row["succeeded_after_retry"]) == (1, 1, 2, 1)
    # Four messages are done (the retried attempt is not), two of them failed for good.
    assert row["error_pct"] == pytest.approx(50.0)


def test_a_run_after_a_requeue_is_marked_and_short_ids_find_runs(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    first = spans.run("sync", start=clock.now - 50, retries=1, error=ValueError(), dead_lettered=True)
    spans.run("sync", start=clock.now - 10, retries=1, message_id=first.message_id)
    spans.run("other", start=clock.now - 5)
    ingest(store, spans)

    items = store.reader.runs(RunFilter(actor="sync"))["items"]
    assert [(item["attempt"], item["requeued"]) for item in items] == [(2, True), (2, False)]
    for short in (first.message_id[:13] + "…", first.trace_id[:13] + "…", first.message_id[:8]):
        found = store.reader.runs(RunFilter(text=short))["items"]
        assert first.span_id in {item["span_id"] for item in found}, short
    assert store.reader.runs(RunFilter(text="00000000-0000"))["items"] == []


def test_broker_snapshots_give_depth_history_and_workers(store: TelemetryStore, clock: Clock) -> None:
    for offset, ready in ((600, 5), (300, 9)):
        snapshot = BrokerSnapshot(
            queues=[
                QueueStats("default", ready=ready, delayed=1, in_flight=None, dead=2, oldest_age=1.0),
                QueueStats("emails", ready=0, delayed=0, in_flight=0, dead=0, oldest_age=0.0),
            ],
            workers=3,
            read_at=clock.now - offset,
            duration=0.01,
        )
        store.writer.write_broker_snapshot(snapshot)
    assert store.writer.flush(timeout=10)

    history = store.reader.queue_history(HOUR, "default")["items"]
    overview = store.reader.overview(HOUR)

    ready = [point["value"] for point in history if point["state"] == "ready"]
    assert ready == [5, 9]
    assert {point["state"] for point in history} == {"ready", "delayed", "dead"}
    assert {point["queue"] for point in history} == {"default"}
    assert {point["queue"] for point in overview["depth"]} == {"default", "emails"}
    assert overview["workers"] == 3


def test_a_queue_name_both_libraries_use_has_a_history_each(store: TelemetryStore, clock: Clock) -> None:
    snapshot = BrokerSnapshot(
        queues=[
            QueueStats(
                "shared", ready=3, delayed=0, in_flight=0, dead=2, oldest_age=4.0, messaging_system="celery"
            ),
            QueueStats("shared", ready=7, delayed=0, in_flight=0, dead=0, oldest_age=9.0),
        ],
        workers=1,
        read_at=clock.now - 30,
        duration=0.01,
        messaging_system=semconv.MESSAGING_SYSTEM_DRAMATIQ,
    )
    store.writer.write_broker_snapshot(snapshot)
    assert store.writer.flush(timeout=10)

    history = store.reader.queue_history(HOUR, "shared")

    ready = {
        point["messaging_system"]: point["value"] for point in history["items"] if point["state"] == "ready"
    }
    assert ready == {"celery": 3, "dramatiq": 7}
    ages = {point["messaging_system"]: point["value"] for point in history["oldest_age"]}
    assert ages == {"celery": 4.0, "dramatiq": 9.0}


def test_a_store_of_the_schema_before_libraries_in_history_is_rebuilt(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE queue_depth (time_ns INTEGER, queue TEXT, state TEXT, value INTEGER)")
    old.execute("INSERT INTO queue_depth VALUES (1, 'stale', 'ready', 1)")
    old.execute("PRAGMA user_version = 4")
    old.commit()
    old.close()
    store = TelemetryStore.open(path, RetentionPolicy(max_age=None, max_size=None), clock=clock)
    try:
        store.writer.write_broker_snapshot(
            BrokerSnapshot(
                queues=[QueueStats("fresh", ready=2, delayed=0, in_flight=0, dead=0, oldest_age=0.0)],
                workers=None,
                read_at=clock.now - 5,
                duration=0.01,
            )
        )
        assert store.writer.flush(timeout=10)
        items = store.reader.queue_history(HOUR)["items"]
    finally:
        store.close()
    assert {(point["queue"], point["messaging_system"]) for point in items} == {("fresh", "dramatiq")}


def test_depth_history_follows_the_snapshots_and_charts_the_oldest_age(
    store: TelemetryStore, clock: Clock
) -> None:
    # A backlog of 45 s, read every 10 s: more than one point in a 15-minute window.
    for offset, ready, age in ((50, 0, 0.0), (40, 3, 2.0), (30, 9, 12.0), (20, 14, 22.0), (10, 2, 31.5)):
        snapshot = BrokerSnapshot(
            queues=[QueueStats("reports", ready=ready, delayed=0, in_flight=1, dead=0, oldest_age=age)],
            workers=1,
            read_at=clock.now - offset,
            duration=0.01,
        )
        store.writer.write_broker_snapshot(snapshot)
    assert store.writer.flush(timeout=10)

    history = store.reader.queue_history(15 * 60)

    assert history["step"] <= 15
    ready = [point for point in history["items"] if point["state"] == "ready"]
    assert len(ready) >= 4
    assert "oldest_age" not in {point["state"] for point in history["items"]}
    ages = [point["value"] for point in history["oldest_age"]]
    assert max(ages) == pytest.approx(31.5)
    assert len(ages) >= 4


def test_trace_has_every_span_sorted_with_events_and_unknown_traces_are_none(
    store: TelemetryStore, spans: SpanFactory
) -> None:
    run = spans.run(error=ZeroDivisionError("division by zero"), retry_scheduled=True)
    ingest(store, spans)

    trace = store.reader.trace(run.trace_id)

    assert trace is not None
    assert [span["name"] for span in trace["spans"]] == ["send default", "process default"]
    send, process = trace["spans"]
    assert send["kind"] == "PRODUCER" and send["parent_span_id"] is None
    assert process["kind"] == "CONSUMER" and process["parent_span_id"] == send["span_id"]
    assert process["status"] == "ERROR"
    assert process["attributes"]["dramatiq.actor.name"] == "send_welcome"
    exception = next(event for event in process["events"] if event["name"] == "exception")
    assert exception["attributes"]["exception.type"] == "ZeroDivisionError"
    assert "exception.stacktrace" in exception["attributes"]
    assert store.reader.trace("0" * 31 + "1") is None
    with pytest.raises(InvalidQuery):
        store.reader.trace("not-a-trace-id")


def test_data_survives_a_restart(tmp_path, spans: SpanFactory) -> None:
    path = tmp_path / "telemetry.db"
    first = TelemetryStore.open(path)
    run = spans.run()
    first.writer.write_spans(span_rows(spans.request()))
    first.close()

    second = TelemetryStore.open(path)
    try:
        assert second.reader.trace(run.trace_id) is not None
        assert second.reader.actors(HOUR)["items"][0]["runs"] == 1
    finally:
        second.close()


def _queue_wait_request(
    at: float, started: float, counts: list[int], *, instance: str = "w1", delta: bool = False
) -> ExportMetricsServiceRequest:
    """One process's ``dramatiq.message.queue_wait`` histogram point for ``charge_payment``."""
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    for key, value in (("service.name", "billing-worker"), ("service.instance.id", instance)):
        resource.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    metric = resource.scope_metrics.add().metrics.add(name=semconv.MESSAGE_QUEUE_WAIT.name, unit="s")
    metric.histogram.aggregation_temporality = (
        AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        if delta
        else AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    point = metric.histogram.data_points.add(
        start_time_unix_nano=int(started * 1e9),
        time_unix_nano=int(at * 1e9),
        count=sum(counts),
        explicit_bounds=[1.0, 10.0, 100.0],
        bucket_counts=counts,
    )
    point.attributes.add(key=semconv.DRAMATIQ_ACTOR_NAME, value=AnyValue(string_value="charge_payment"))
    return request


def test_queue_wait_p95_counts_what_each_process_added_within_the_window(
    store: TelemetryStore, spans: SpanFactory, clock: Clock
) -> None:
    spans.run("charge_payment", "payments", start=clock.now - 60)
    ingest(store, spans)
    # A process running for three hours: slow waits before the window, fast ones within it.
    for age, counts in ((2 * HOUR, [0, 0, 50, 0]), (HOUR / 2, [10, 0, 50, 0]), (60, [100, 0, 50, 0])):
        store.writer.write_metrics(
            metric_rows(_queue_wait_request(clock.now - age, clock.now - 3 * HOUR, counts))
        )
    assert store.writer.flush(timeout=10)

    (row,) = store.reader.actors(HOUR)["items"]
    assert row["queue_wait_p95"] is not None and row["queue_wait_p95"] <= 1.0
    (row,) = store.reader.actors(4 * HOUR)["items"]
    assert row["queue_wait_p95"] > 10.0

    # Delta points within the window are summed: a second process's slow waits now dominate.
    for age in (600, 300):
        request = _queue_wait_request(
            clock.now - age, clock.now - age - 60, [0, 0, 0, 100], instance="w2", delta=True
        )
        store.writer.write_metrics(metric_rows(request))
    assert store.writer.flush(timeout=10)
    (row,) = store.reader.actors(HOUR)["items"]
    assert row["queue_wait_p95"] == 100.0
