"""Runs of real Dramatiq actors, traced by ``tasklens.dramatiq``, as the dashboard API shows them."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.monitor.receiver.conftest import Served

#: Longest the worker may take to process the test's messages, in seconds.
PROCESS_TIMEOUT = 30.0


class Collected(SpanExporter):
    """Keeps finished spans and wakes waiters."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.changed = threading.Condition()

    def export(self, spans):  # type: ignore[no-untyped-def]
        with self.changed:
            self.spans.extend(spans)
            self.changed.notify_all()
        return SpanExportResult.SUCCESS

    def wait_for(self, prefix: str, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(
                lambda: sum(span.name.startswith(prefix) for span in self.spans) >= count, PROCESS_TIMEOUT
            )


@pytest.fixture
def traced_broker() -> Iterator[tuple[StubBroker, Collected]]:
    collected = Collected()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "billing-worker", "service.instance.id": "w-1"})
    )
    provider.add_span_processor(SimpleSpanProcessor(collected))
    broker = StubBroker()
    broker.add_middleware(OpenTelemetryMiddleware(tracer_provider=provider, meter_provider=MeterProvider()))
    broker.emit_after("process_boot")
    yield broker, collected
    broker.close()
    provider.shutdown()


def test_processed_and_dead_lettered_runs_reach_the_dashboard(
    served: Served, traced_broker: tuple[StubBroker, Collected]
) -> None:
    broker, collected = traced_broker

    @dramatiq.actor(broker=broker, queue_name="payments", max_retries=0)
    def charge_payment(amount: int) -> None:
        if amount < 0:
            raise ValueError("negative amount")

    @dramatiq.actor(broker=broker, queue_name="emails")
    def send_welcome(user: str) -> None:
        pass

    paid = charge_payment.send(5)
    refused = charge_payment.send(-1)
    welcomed = send_welcome.send("ann")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        assert collected.wait_for("process ", 3)
    finally:
        worker.stop()
    exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", timeout=10)
    assert exporter.export(collected.spans) is SpanExportResult.SUCCESS
    assert served.store.writer.flush(timeout=10)

    runs = {run["message_id"]: run for run in httpx.get(f"{served.url}/api/runs").json()["items"]}
    assert set(runs) == {paid.message_id, refused.message_id, welcomed.message_id}
    failed = runs[refused.message_id]
    assert (failed["actor"], failed["queue"], failed["status"], failed["attempt"]) == (
        "charge_payment",
        "payments",
        "error",
        1,
    )
    assert failed["error_type"] == "ValueError"
    assert runs[welcomed.message_id]["status"] == "ok"
    actors = {row["actor"]: row for row in httpx.get(f"{served.url}/api/actors").json()["items"]}
    assert actors["charge_payment"]["runs"] == 2
    assert actors["charge_payment"]["error_pct"] == 50.0
    assert actors["charge_payment"]["dead_letters"] == 1
    assert actors["send_welcome"]["runs"] == 1
    waterfall = httpx.get(f"{served.url}/api/traces/{failed['trace_id']}").json()["spans"]
    assert [(span["name"], span["kind"]) for span in waterfall] == [
        ("send payments", "PRODUCER"),
        ("process payments", "CONSUMER"),
    ]
    assert {event["name"] for event in waterfall[1]["events"]} >= {
        "exception",
        "dramatiq.message.dead_lettered",
    }
    found = httpx.get(f"{served.url}/api/runs", params={"q": "negative"}).json()["items"]
    assert [run["message_id"] for run in found] == [refused.message_id]
