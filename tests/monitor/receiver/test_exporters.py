"""The SDK's own OTLP/HTTP exporters deliver to the receiver, and what they send is queryable."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tasklens import semconv
from tests.monitor.receiver.conftest import Served
from tests.monitor.store.spans import SpanFactory

#: Exporters give up after this long, in seconds, so a broken receiver fails fast.
EXPORT_TIMEOUT = 10


def test_protobuf_spans_from_the_sdk_exporter_are_queryable(served: Served) -> None:
    spans = SpanFactory()
    ok = spans.run("send_welcome", "emails")
    failed = spans.run("charge_payment", "payments", error=ValueError("card declined"), retries=1)
    exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", timeout=EXPORT_TIMEOUT)

    assert exporter.export(spans.finished()) is SpanExportResult.SUCCESS
    assert served.store.writer.flush(timeout=10)

    runs = httpx.get(f"{served.url}/api/runs").json()["items"]
    assert {(run["trace_id"], run["status"]) for run in runs} == {
        (ok.trace_id, "ok"),
        (failed.trace_id, "error"),
    }
    found = httpx.get(f"{served.url}/api/runs", params={"q": "declined"}).json()["items"]
    assert [run["message_id"] for run in found] == [failed.message_id]
    waterfall = httpx.get(f"{served.url}/api/traces/{failed.trace_id}").json()
    assert [span["name"] for span in waterfall["spans"]] == ["send payments", "process payments"]
    assert waterfall["spans"][1]["events"][0]["attributes"]["exception.message"] == "card declined"


def test_gzip_compressed_spans_are_accepted(served: Served) -> None:
    spans = SpanFactory()
    run = spans.run()
    exporter = OTLPSpanExporter(
        endpoint=f"{served.url}/v1/traces", compression=Compression.Gzip, timeout=EXPORT_TIMEOUT
    )

    assert exporter.export(spans.finished()) is SpanExportResult.SUCCESS
    assert served.store.writer.flush(timeout=10)

    assert httpx.get(f"{served.url}/api/traces/{run.trace_id}").status_code == 200


def _meter_provider(served: Served, instance: str) -> MeterProvider:
    exporter = OTLPMetricExporter(endpoint=f"{served.url}/v1/metrics", timeout=EXPORT_TIMEOUT)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "billing-worker", "service.instance.id": instance})
    return MeterProvider(metric_readers=[reader], resource=resource)


def _task_metrics(provider: MeterProvider, durations: list[float], consumed: int) -> None:
    meter = provider.get_meter("tasklens.dramatiq")
    attributes = {
        semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_DRAMATIQ,
        semconv.MESSAGING_DESTINATION_NAME: "payments",
        semconv.DRAMATIQ_ACTOR_NAME: "charge_payment",
    }
    histogram = meter.create_histogram(
        semconv.PROCESS_DURATION.name,
        unit=semconv.PROCESS_DURATION.unit,
        explicit_bucket_boundaries_advisory=list(semconv.DURATION_BUCKETS_S),
    )
    counter = meter.create_counter(semconv.CONSUMED_MESSAGES.name, unit=semconv.CONSUMED_MESSAGES.unit)
    in_flight = meter.create_up_down_counter(semconv.MESSAGES_IN_FLIGHT.name)
    for duration in durations:
        histogram.record(duration, attributes)
    counter.add(consumed, attributes)
    in_flight.add(1, attributes)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the registry's exposition, keyed by name and labels."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_task_metrics_of_several_processes_are_summed_for_prometheus(served: Served) -> None:
    first, second = _meter_provider(served, "worker-1"), _meter_provider(served, "worker-2")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(served.metrics)
    labels = {
        "dramatiq_actor_name": "charge_payment",
        "messaging_destination_name": "payments",
        "messaging_system": "dramatiq",
        "service_name": "billing-worker",
    }

    def value(name: str, **extra: str) -> float:
        return _samples(registry)[(name, frozenset({**labels, **extra}.items()))]

    try:
        _task_metrics(first, [0.003, 0.2], consumed=2)
        _task_metrics(second, [0.2, 3.0, 20.0], consumed=3)
        assert first.force_flush(EXPORT_TIMEOUT * 1000) and second.force_flush(EXPORT_TIMEOUT * 1000)

        assert value("messaging_client_consumed_messages_total") == 5
        bucket = "messaging_process_duration_seconds_bucket"
        assert value(bucket, le="0.005") == 1
        assert value(bucket, le="0.25") == 3
        assert value(bucket, le="5.0") == 4
        assert value(bucket, le="+Inf") == 5
        assert value("messaging_process_duration_seconds_count") == 5
        assert value("messaging_process_duration_seconds_sum") == pytest.approx(23.403)
        assert value("dramatiq_messages_in_flight") == 2

        # A later export of the same process replaces its totals instead of adding to them.
        _task_metrics(first, [], consumed=1)
        assert first.force_flush(EXPORT_TIMEOUT * 1000)
        assert value("messaging_client_consumed_messages_total") == 6
    finally:
        first.shutdown()
        second.shutdown()


def test_process_and_queue_wait_metrics_reach_the_dashboard(served: Served) -> None:
    spans = SpanFactory()
    spans.run("charge_payment", "payments")
    OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", timeout=EXPORT_TIMEOUT).export(spans.finished())
    provider = _meter_provider(served, "worker-7")
    meter = provider.get_meter("opentelemetry.instrumentation.system_metrics")
    meter.create_observable_gauge(
        "process.cpu.utilization", callbacks=[lambda _: [_observation(0.25)]], unit="1"
    )
    meter.create_observable_up_down_counter(
        "process.memory.usage", callbacks=[lambda _: [_observation(50_000_000)]], unit="By"
    )
    meter.create_observable_up_down_counter("process.thread.count", callbacks=[lambda _: [_observation(9)]])
    wait = meter.create_histogram(
        semconv.MESSAGE_QUEUE_WAIT.name,
        unit="s",
        explicit_bucket_boundaries_advisory=list(semconv.QUEUE_WAIT_BUCKETS_S),
    )
    for seconds in [0.02] * 19 + [40.0]:
        wait.record(seconds, {semconv.DRAMATIQ_ACTOR_NAME: "charge_payment"})

    try:
        assert provider.force_flush(EXPORT_TIMEOUT * 1000)
    finally:
        provider.shutdown()
    assert served.store.writer.flush(timeout=10)

    processes = {item["instance"]: item for item in httpx.get(f"{served.url}/api/processes").json()["items"]}
    # The process metrics' process, and the one whose runs were sent (it reported no metrics).
    assert set(processes) == {"worker-7", "worker-1"}
    assert processes["worker-1"]["kind"] == "worker" and processes["worker-1"]["cpu_percent"] is None
    process = processes["worker-7"]
    assert (process["service"], process["instance"]) == ("billing-worker", "worker-7")
    assert process["cpu_percent"] == 25.0
    assert process["memory_rss_bytes"] == 50_000_000
    assert process["threads"] == 9
    assert process["last_seen"] <= time.time()
    actor = httpx.get(f"{served.url}/api/actors").json()["items"][0]
    assert actor["actor"] == "charge_payment"
    assert 0.01 <= actor["queue_wait_p95"] <= 0.025


def _observation(value: float):  # type: ignore[no-untyped-def]
    from opentelemetry.metrics import Observation

    return Observation(value)


def test_log_records_from_the_sdk_exporter_appear_in_their_trace(served: Served) -> None:
    spans = SpanFactory()
    provider = LoggerProvider(resource=Resource.create({"service.name": "billing-worker"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{served.url}/v1/logs", timeout=EXPORT_TIMEOUT))
    )
    logger = logging.getLogger("tests.receiver.actor")
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        with spans.tracer.start_as_current_span("process payments") as span:
            logger.warning("charging card %s", "4242")
        trace_id = f"{span.get_span_context().trace_id:032x}"
        span_id = f"{span.get_span_context().span_id:016x}"
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", timeout=EXPORT_TIMEOUT).export(spans.finished())
    assert served.store.writer.flush(timeout=10)

    logs = httpx.get(f"{served.url}/api/traces/{trace_id}").json()["logs"]

    assert [(log["body"], log["severity"], log["span_id"]) for log in logs] == [
        ("charging card 4242", "WARN", span_id)
    ]
    assert trace.get_current_span() is trace.INVALID_SPAN
