"""The workers' process health metrics on the monitor's /metrics: one series per process, and a
process not heard from for ``STALE_AFTER`` seconds drops out."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tasklens.monitor.ingest.received_metrics import STALE_AFTER, ReceivedMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _export(instance: str, rss: int, cpu: float) -> ExportMetricsServiceRequest:
    """What one worker process exports: memory and CPU time as the system-metrics
    instrumentation reports them (an up-down counter in bytes, a counter in seconds)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "billing-worker", "service.instance.id": instance}),
    )
    meter = provider.get_meter("opentelemetry.instrumentation.system_metrics")

    def memory(options: CallbackOptions) -> list[Observation]:
        return [Observation(rss)]

    def cpu_time(options: CallbackOptions) -> list[Observation]:
        return [Observation(cpu, {"type": "user"})]

    meter.create_observable_up_down_counter("process.memory.usage", [memory], unit="By")
    meter.create_observable_counter("process.cpu.time", [cpu_time], unit="s")
    meter.create_observable_gauge("process.cpu.utilization", [lambda options: [Observation(0.5)]], unit="1")
    data = reader.get_metrics_data()
    provider.shutdown()
    return encode_metrics(data)


def _served(received: ReceivedMetrics) -> dict[str, dict[str, float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(received)
    served: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            served.setdefault(sample.name, {})[sample.labels.get("service_instance_id", "")] = sample.value
    return served


def test_each_process_is_its_own_series_labelled_with_its_instance() -> None:
    received = ReceivedMetrics(clock=Clock())
    received.update(_export("w-1", rss=100_000_000, cpu=3.5))
    received.update(_export("w-2", rss=150_000_000, cpu=1.25))

    served = _served(received)

    assert served["process_memory_usage_bytes"] == {"w-1": 100_000_000, "w-2": 150_000_000}
    assert served["process_cpu_time_seconds_total"] == {"w-1": 3.5, "w-2": 1.25}
    assert not any(name.startswith("process_cpu_utilization") for name in served)


def test_a_process_not_heard_from_drops_out_and_the_others_stay() -> None:
    clock = Clock()
    received = ReceivedMetrics(clock=clock)
    received.update(_export("w-1", rss=100_000_000, cpu=3.5))
    clock.now += STALE_AFTER / 2
    received.update(_export("w-2", rss=150_000_000, cpu=1.25))
    clock.now += STALE_AFTER / 2 + 1

    served = _served(received)

    assert served["process_memory_usage_bytes"] == {"w-2": 150_000_000}
    assert served["process_cpu_time_seconds_total"] == {"w-2": 1.25}
