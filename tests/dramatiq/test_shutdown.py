"""Graceful worker shutdown flushes telemetry, and a dead collector cannot hold it up."""

from __future__ import annotations

import time

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasklens.dramatiq import OpenTelemetryMiddleware
from tasklens.dramatiq import middleware as middleware_module


def _run_one_message(tracer_provider: TracerProvider) -> dramatiq.Worker:
    broker = StubBroker()
    broker.emit_after("process_boot")
    broker.add_middleware(OpenTelemetryMiddleware(tracer_provider=tracer_provider))

    @dramatiq.actor(broker=broker, queue_name="shutdown")
    def job() -> None:
        pass

    job.send()
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    broker.join("shutdown", timeout=10_000)
    worker.join()
    return worker


def test_spans_are_flushed_when_the_worker_stops() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    worker = _run_one_message(provider)
    assert exporter.get_finished_spans() == ()  # still buffered in the batch processor
    worker.stop()
    assert sorted(s.name for s in exporter.get_finished_spans()) == ["process shutdown", "send shutdown"]


def test_an_unreachable_collector_does_not_hold_up_the_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(middleware_module, "FLUSH_TIMEOUT_MS", 300)
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:1/v1/traces", timeout=60)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=600_000))
    worker = _run_one_message(provider)
    started = time.monotonic()
    worker.stop()
    # The exporter alone would retry for 60 s; the middleware waits for its flush 0.3 s.
    assert time.monotonic() - started < 10
    exporter.shutdown()
