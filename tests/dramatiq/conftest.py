"""Fixtures for the Dramatiq instrumentation: brokers (stub, Redis, RabbitMQ) and in-memory telemetry."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

from tasklens.dramatiq import OpenTelemetryMiddleware

BROKERS = ("stub", "redis", "rabbitmq")


class RecordingSampler(Sampler):
    """Samples everything and remembers the attributes each span had when it started."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def should_sample(
        self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None
    ):  # type: ignore[no-untyped-def]
        with self._lock:
            self.seen.setdefault(name, {}).update(dict(attributes or {}))
            self.seen.setdefault("__all__", {}).setdefault(name, []).append(dict(attributes or {}))
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "RecordingSampler"


class CountingProcessor(SpanProcessor):
    """Counts span starts and ends (to prove none is left open) and wakes waiters on each end."""

    def __init__(self) -> None:
        self.started = 0
        self.ended = 0
        self.changed = threading.Condition()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        with self.changed:
            self.started += 1

    def on_end(self, span: ReadableSpan) -> None:
        with self.changed:
            self.ended += 1
            self.changed.notify_all()


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    sampler: RecordingSampler
    counter: CountingProcessor = field(default_factory=CountingProcessor)

    def wait_for_spans(self, name_prefix: str, count: int, timeout: float = 30.0) -> list[ReadableSpan]:
        """Block until ``count`` finished spans start with ``name_prefix``; fail after ``timeout`` s."""
        with self.counter.changed:
            done = self.counter.changed.wait_for(lambda: len(self.spans(name_prefix)) >= count, timeout)
        spans = self.spans(name_prefix)
        assert done, (
            f"expected {count} {name_prefix!r} spans, got {len(spans)}: {[s.name for s in self.spans()]}"
        )
        return spans

    def spans(self, name_prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(name_prefix)]

    def metric_points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        points: list[Any] = []
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def metric_total(self, name: str, **attributes: Any) -> float:
        """Sum of counter values (or histogram counts) whose attributes include ``attributes``."""
        total = 0.0
        for point in self.metric_points(name):
            point_attributes = dict(point.attributes)
            wanted = {k.replace("__", "."): v for k, v in attributes.items()}
            if all(point_attributes.get(k) == v for k, v in wanted.items()):
                total += point.count if hasattr(point, "bucket_counts") else point.value
        return total


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    sampler = RecordingSampler()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(sampler=sampler)
    counter = CountingProcessor()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer_provider.add_span_processor(counter)
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, meter_provider, exporter, reader, sampler, counter)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@dataclass
class BrokerRig:
    """A broker of one kind with the middleware, a queue of its own, and a worker to drain it."""

    kind: str
    broker: dramatiq.Broker
    queue_name: str
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def actor(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        options.setdefault("queue_name", self.queue_name)
        decorator = dramatiq.actor(broker=self.broker, **options)
        return decorator(fn) if fn is not None else decorator

    def worker(self, worker_threads: int = 2) -> dramatiq.Worker:
        worker = dramatiq.Worker(self.broker, worker_timeout=50, worker_threads=worker_threads)
        worker.start()
        return worker

    def process(self, telemetry: Telemetry, count: int, *, timeout: float = 30.0) -> list[ReadableSpan]:
        """Run a worker until ``count`` process spans have ended, then stop it; return those spans."""
        worker = self.worker()
        try:
            spans = telemetry.wait_for_spans("process ", count, timeout)
            worker.join()
        finally:
            worker.stop()
        return spans


def _make_broker(kind: str, request: pytest.FixtureRequest, unique_name: str) -> tuple[dramatiq.Broker, list]:
    cleanups: list[Callable[[], None]] = []
    if kind == "stub":
        broker: dramatiq.Broker = StubBroker()
        broker.emit_after("process_boot")
    elif kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        url = request.getfixturevalue("redis_url")
        broker = RedisBroker(url=url, namespace=unique_name)

        def drop_keys() -> None:
            client = broker.client
            keys = list(client.scan_iter(match=f"{unique_name}:*", count=1000))
            if keys:
                client.delete(*keys)

        cleanups.append(drop_keys)
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        url = request.getfixturevalue("rabbitmq_url")
        broker = RabbitmqBroker(url=url, confirm_delivery=True)

        def drop_queues() -> None:
            for queue_name in list(broker.queues):
                for name in (queue_name, f"{queue_name}.DQ", f"{queue_name}.XQ"):
                    with contextlib.suppress(Exception):
                        broker.channel.queue_delete(name)

        cleanups.append(drop_queues)
    broker.add_middleware(AsyncIO())
    return broker, cleanups


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def rig(
    broker_kind: str, request: pytest.FixtureRequest, unique_name: str, telemetry: Telemetry
) -> Iterator[BrokerRig]:
    """A broker with OpenTelemetryMiddleware appended last, as the usual guides show."""
    broker, cleanups = _make_broker(broker_kind, request, unique_name)
    broker.add_middleware(
        OpenTelemetryMiddleware(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    )
    rig = BrokerRig(broker_kind, broker, unique_name, cleanups)
    yield rig
    for cleanup in cleanups:
        cleanup()
    broker.close()


@pytest.fixture
def make_rig(
    broker_kind: str, request: pytest.FixtureRequest, unique_name: str
) -> Iterator[Callable[..., BrokerRig]]:
    """Build a rig with a middleware of the test's choosing (or none)."""
    made: list[BrokerRig] = []

    def make(middleware: dramatiq.Middleware | None = None, *, first: bool = False) -> BrokerRig:
        broker, cleanups = _make_broker(broker_kind, request, unique_name)
        if middleware is not None:
            if first:
                broker.add_middleware(middleware, before=type(broker.middleware[0]))
            else:
                broker.add_middleware(middleware)
        rig = BrokerRig(broker_kind, broker, unique_name, cleanups)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        for cleanup in rig.cleanups:
            cleanup()
        rig.broker.close()
