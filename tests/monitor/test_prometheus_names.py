"""The monitor's /metrics names the workers' metrics as a Collector's ``prometheus`` exporter does.

Real Dramatiq actors (instrumented by ``tasklens.dramatiq``) and the process health metrics of
opentelemetry-instrumentation-system-metrics export OTLP over HTTP from the SDK to a running
monitor; what the monitor then serves on ``/metrics`` must carry exactly the names in
``COLLECTOR_NAMES``, the OTLP-to-Prometheus translation documented in docs/telemetry.md
("Prometheus names"), written out here by hand from each metric's name, instrument and unit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import httpx
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families

from tasklens import semconv
from tasklens.brokers.base import QueueStats
from tasklens.celery import CeleryInstrumentor
from tasklens.dramatiq import OpenTelemetryMiddleware
from tasklens.monitor import MonitorSettings, create_app
from tasklens.telemetry.process_metrics import PROCESS_METRICS
from tests.monitor.fake_broker import FAKE_URL, FakeInspector
from tests.monitor.receiver.conftest import serving

#: The Prometheus series names of each OpenTelemetry metric, by the Collector's translation:
#: dots become underscores, the unit becomes a suffix (``s`` -> ``_seconds``, ``By`` -> ``_bytes``,
#: a ``{...}`` annotation nothing), a monotonic sum gets ``_total``, a histogram is served as
#: ``_bucket``/``_sum``/``_count``, an up-down counter as a gauge.
COLLECTOR_NAMES: dict[str, set[str]] = {
    # counter, {message}
    "messaging.client.sent.messages": {"messaging_client_sent_messages_total"},
    # histogram, s
    "messaging.client.operation.duration": {
        "messaging_client_operation_duration_seconds_bucket",
        "messaging_client_operation_duration_seconds_sum",
        "messaging_client_operation_duration_seconds_count",
    },
    # histogram, s
    "messaging.process.duration": {
        "messaging_process_duration_seconds_bucket",
        "messaging_process_duration_seconds_sum",
        "messaging_process_duration_seconds_count",
    },
    # counter, {message}
    "messaging.client.consumed.messages": {"messaging_client_consumed_messages_total"},
    # counter, {retry}
    "dramatiq.message.retries": {"dramatiq_message_retries_total"},
    # counter, {message}
    "dramatiq.message.dead_lettered": {"dramatiq_message_dead_lettered_total"},
    # updowncounter, {message}
    "dramatiq.messages.in_flight": {"dramatiq_messages_in_flight"},
    # histogram, s
    "dramatiq.message.queue_wait": {
        "dramatiq_message_queue_wait_seconds_bucket",
        "dramatiq_message_queue_wait_seconds_sum",
        "dramatiq_message_queue_wait_seconds_count",
    },
    # counter, {retry}
    "celery.task.retries": {"celery_task_retries_total"},
    # counter, {task}
    "celery.task.failures": {"celery_task_failures_total"},
    # updowncounter, {task}
    "celery.tasks.in_flight": {"celery_tasks_in_flight"},
    # histogram, s
    "celery.task.queue_wait": {
        "celery_task_queue_wait_seconds_bucket",
        "celery_task_queue_wait_seconds_sum",
        "celery_task_queue_wait_seconds_count",
    },
    # observable counter, s
    "process.cpu.time": {"process_cpu_time_seconds_total"},
    # observable counter, no unit
    "process.context_switches": {"process_context_switches_total"},
    # observable updowncounter, By
    "process.memory.usage": {"process_memory_usage_bytes"},
    # observable updowncounter, By
    "process.memory.virtual": {"process_memory_virtual_bytes"},
    # observable updowncounter, no unit
    "process.thread.count": {"process_thread_count"},
    # observable updowncounter, no unit
    "process.open_file_descriptor.count": {"process_open_file_descriptor_count"},
    # observable counter, {collection}
    "cpython.gc.collections": {"cpython_gc_collections_total"},
    # observable counter, {object}
    "cpython.gc.collected_objects": {"cpython_gc_collected_objects_total"},
    # observable counter, {object}
    "cpython.gc.uncollectable_objects": {"cpython_gc_uncollectable_objects_total"},
}
#: Served by a Collector only (see docs/telemetry.md): a gauge of unit ``1`` is ``..._ratio``.
COLLECTOR_ONLY = {"process.cpu.utilization": {"process_cpu_utilization_ratio"}}

#: The instrument and unit each tasklens row of ``COLLECTOR_NAMES`` was derived from.
DERIVED_FROM: dict[str, tuple[str, str]] = {
    "messaging.client.sent.messages": ("counter", "{message}"),
    "messaging.client.operation.duration": ("histogram", "s"),
    "messaging.process.duration": ("histogram", "s"),
    "messaging.client.consumed.messages": ("counter", "{message}"),
    "dramatiq.message.retries": ("counter", "{retry}"),
    "dramatiq.message.dead_lettered": ("counter", "{message}"),
    "dramatiq.messages.in_flight": ("updowncounter", "{message}"),
    "dramatiq.message.queue_wait": ("histogram", "s"),
    "celery.task.retries": ("counter", "{retry}"),
    "celery.task.failures": ("counter", "{task}"),
    "celery.tasks.in_flight": ("updowncounter", "{task}"),
    "celery.task.queue_wait": ("histogram", "s"),
}
SERVICE, INSTANCE = "billing-worker", "billing-worker-1"
QUEUE = "payments"
#: Longest the worker may take to finish the test's messages, in milliseconds.
JOIN_TIMEOUT_MS = 30_000


@dataclass
class Scraped:
    #: Label sets of each served sample name.
    samples: dict[str, list[dict[str, str]]]


def _scrape(url: str) -> Scraped:
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return Scraped(samples)


def _run_workers(url: str) -> None:
    """Real actors on a stub broker, exporting OTLP to the monitor at ``url`` as a worker does."""
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{url}/v1/metrics", timeout=10), export_interval_millis=600_000
    )
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": SERVICE, "service.instance.id": INSTANCE}),
    )
    system_metrics = SystemMetricsInstrumentor(config=dict(PROCESS_METRICS))
    system_metrics.instrument(meter_provider=provider)
    broker = StubBroker()
    broker.add_middleware(OpenTelemetryMiddleware(meter_provider=provider))
    for middleware in broker.middleware:
        if isinstance(middleware, Retries):
            middleware.min_backoff = middleware.max_backoff = 1

    @dramatiq.actor(broker=broker, queue_name=QUEUE, max_retries=1)
    def charge(amount: int) -> None:
        if amount < 0:
            raise ValueError("negative amount")

    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        charge.send(5)
        charge.send(-1)
        broker.join(QUEUE, timeout=JOIN_TIMEOUT_MS, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
        broker.close()
        system_metrics.uninstrument()
    _run_celery(provider)
    assert provider.force_flush(10_000)
    provider.shutdown()


def _run_celery(provider: MeterProvider) -> None:
    """A real Celery worker on the memory transport: one task that succeeds, one retried, then failed."""
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument(meter_provider=provider)
    try:
        app = Celery("prometheus-names", set_as_current=False)
        app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_default_queue=QUEUE,
            worker_hijack_root_logger=False,
            worker_enable_remote_control=False,
            worker_send_task_events=False,
        )

        @app.task(bind=True, name="refund", max_retries=1, shared=False)
        def refund(self: Any, amount: int) -> None:
            if amount < 0:
                raise self.retry(exc=ValueError("negative amount"), countdown=0)

        with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING"):
            refund.delay(5).get(timeout=JOIN_TIMEOUT_MS / 1000)
            with contextlib.suppress(ValueError):
                refund.delay(-1).get(timeout=JOIN_TIMEOUT_MS / 1000)
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def scraped() -> Iterator[Scraped]:
    inspector = FakeInspector()
    inspector.add_queue(QueueStats(QUEUE, ready=3, delayed=0, in_flight=0, dead=1, oldest_age=2.0))
    app = create_app(
        MonitorSettings(broker_url=FAKE_URL, cache_ttl=0.0, store_path=None), open_inspector=lambda: inspector
    )
    with serving(app) as url:
        _run_workers(url)
        yield _scrape(url)


def test_the_table_was_derived_from_the_current_specs() -> None:
    specs = {spec.name: (spec.instrument, spec.unit) for spec in semconv.METRICS}
    assert {name: specs[name] for name in DERIVED_FROM} == DERIVED_FROM


def test_the_table_covers_every_worker_metric_and_process_metric() -> None:
    worker_side = {
        spec.name
        for spec in semconv.METRICS
        if not spec.name.startswith(("dramatiq.queue.", "dramatiq.workers", "tasklens."))
    }
    assert worker_side | set(PROCESS_METRICS) == set(COLLECTOR_NAMES) | set(COLLECTOR_ONLY)


def test_the_monitor_serves_worker_metrics_under_their_collector_names(scraped: Scraped) -> None:
    served = set(scraped.samples)
    for name, expected in COLLECTOR_NAMES.items():
        assert expected <= served, f"{name}: expected {sorted(expected)} on /metrics"
    for name, names in COLLECTOR_ONLY.items():
        assert not names & served, f"{name} is documented as served by a Collector only"
    # Nothing else of the workers' comes out under another spelling (broker gauges aside).
    workers_served = {
        sample
        for sample in served
        if not sample.startswith(("dramatiq_queue_", "dramatiq_workers", "tasklens_"))
    }
    assert workers_served == set().union(*COLLECTOR_NAMES.values())


def test_task_metrics_carry_the_attributes_as_labels_summed_over_processes(scraped: Scraped) -> None:
    consumed = [
        labels
        for labels in scraped.samples["messaging_client_consumed_messages_total"]
        if labels["messaging_system"] == semconv.MESSAGING_SYSTEM_DRAMATIQ
    ]
    assert {labels["celery_task_name"] for labels in scraped.samples["celery_task_failures_total"]} == {
        "refund"
    }
    for labels in consumed:
        assert labels["messaging_system"] == semconv.MESSAGING_SYSTEM_DRAMATIQ
        assert labels["messaging_destination_name"] == QUEUE
        assert labels["messaging_operation_name"] == semconv.OPERATION_PROCESS
        assert labels["dramatiq_actor_name"] == "charge"
        assert labels["service_name"] == SERVICE
        assert "service_instance_id" not in labels
    assert {labels.get("error_type", "") for labels in consumed} == {"", "ValueError"}
    (dead,) = scraped.samples["dramatiq_message_dead_lettered_total"]
    assert dead["dramatiq_dead_letter_reason"] == semconv.REASON_RETRIES_EXHAUSTED


def test_process_metrics_are_one_series_per_process(scraped: Scraped) -> None:
    for name in ("process_cpu_time_seconds_total", "process_memory_usage_bytes", "process_thread_count"):
        for labels in scraped.samples[name]:
            assert (labels["service_name"], labels["service_instance_id"]) == (SERVICE, INSTANCE)
    assert {labels["type"] for labels in scraped.samples["process_cpu_time_seconds_total"]} == {
        "user",
        "system",
    }
