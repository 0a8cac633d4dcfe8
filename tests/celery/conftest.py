"""Fixtures for the Celery instrumentation: apps on the memory transport, Redis and RabbitMQ,
real in-process workers, and in-memory telemetry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tasklens.celery import CeleryInstrumentor
from tests.dramatiq.conftest import CountingProcessor, RecordingSampler, Telemetry

BROKERS = ("memory", "redis", "rabbitmq")

#: How long a test waits for a worker to finish what it was given, in seconds.
WAIT_S = 30.0


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


@pytest.fixture
def instrument(telemetry: Telemetry) -> Iterator[Callable[..., CeleryInstrumentor]]:
    """Instrument Celery with the test's providers (and options); uninstrumented afterwards."""
    instrumentor = CeleryInstrumentor()

    def start(**options: Any) -> CeleryInstrumentor:
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider, **options
        )
        return instrumentor

    yield start
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


@pytest.fixture
def instrumented(instrument: Callable[..., CeleryInstrumentor]) -> CeleryInstrumentor:
    return instrument()


@dataclass
class AppRig:
    """A Celery app of one broker kind with a queue of its own, and a worker to run it."""

    kind: str
    app: Celery
    queue_name: str
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def task(self, *args: Any, **options: Any) -> Any:
        # Not shared: a task of this app is unknown to every other app, as in separate services.
        options.setdefault("shared", False)
        return self.app.task(*args, **options)

    @contextlib.contextmanager
    def worker(self, pool: str = "threads", concurrency: int = 2) -> Iterator[Any]:
        with start_worker(
            self.app,
            pool=pool,
            concurrency=concurrency,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=WAIT_S,
        ) as worker:
            yield worker

    def run(self, telemetry: Telemetry, count: int, pool: str = "threads") -> list[ReadableSpan]:
        """Run a worker until ``count`` process spans have ended; return them."""
        with self.worker(pool):
            return telemetry.wait_for_spans("process ", count, WAIT_S)


def make_app(
    kind: str, request: pytest.FixtureRequest, unique_name: str, main: str | None = None
) -> tuple[Celery, list[Callable[[], None]]]:
    """An app whose every key or queue on the shared servers is named after ``unique_name``."""
    cleanups: list[Callable[[], None]] = []
    app = Celery(main or unique_name, set_as_current=False)
    app.conf.update(
        task_default_queue=unique_name,
        worker_hijack_root_logger=False,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=False,
        result_expires=300,
    )
    if kind == "memory":
        app.conf.update(broker_url="memory://", result_backend="cache+memory://")
        return app, cleanups
    redis_url = request.getfixturevalue("redis_url")
    prefix = f"{unique_name}:"
    app.conf.update(
        result_backend=redis_url,
        result_backend_transport_options={"global_keyprefix": prefix},
    )

    def drop_redis_keys() -> None:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()

    cleanups.append(drop_redis_keys)
    if kind == "redis":
        app.conf.update(broker_url=redis_url, broker_transport_options={"global_keyprefix": prefix})
    else:
        # Without AMQP heartbeats the worker stops in about a second instead of ten.
        app.conf.update(broker_url=request.getfixturevalue("rabbitmq_url"), broker_heartbeat=0)

        def drop_queue() -> None:
            with app.connection_for_write() as connection, contextlib.suppress(Exception):
                connection.default_channel.queue_delete(unique_name)

        cleanups.insert(0, drop_queue)
    return app, cleanups


@pytest.fixture(params=BROKERS)
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_rig(
    broker_kind: str, request: pytest.FixtureRequest, unique_name: str
) -> Iterator[Callable[..., AppRig]]:
    """Build apps on the test's broker kind (several may share the queue, as separate services do)."""
    made: list[AppRig] = []

    def make(main: str | None = None) -> AppRig:
        app, cleanups = make_app(broker_kind, request, unique_name, main)
        rig = AppRig(broker_kind, app, unique_name, cleanups)
        made.append(rig)
        return rig

    yield make
    for rig in reversed(made):
        for cleanup in rig.cleanups:
            with contextlib.suppress(Exception):
                cleanup()
        rig.app.close()


@pytest.fixture
def rig(make_rig: Callable[..., AppRig]) -> AppRig:
    return make_rig()
