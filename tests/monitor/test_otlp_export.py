"""The broker gauges over OTLP: names, attributes and unknowns; a real export to a receiver."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tasklens.brokers.base import QueueStats
from tasklens.monitor.watch.inspectors import SharedInspector
from tasklens.monitor.watch.otlp_export import otlp_export_enabled, start_otlp_export
from tasklens.monitor.watch.snapshots import SnapshotReader
from tests.monitor.fake_broker import FakeInspector
from tests.monitor.ground_truth import PopulatedQueue
from tests.monitor.processes import running_monitor
from tests.otlp_receiver import OtlpReceiver

#: How long the monitor may take to export the first points, in seconds.
EXPORT_DEADLINE = 20.0

Points = dict[tuple[str, tuple[tuple[str, object], ...]], float]


def collect(fake: FakeInspector) -> Points:
    metric_reader = InMemoryMetricReader()
    reader = SnapshotReader(SharedInspector(lambda: fake), redacted_url="redis://fake", timeout=2.0, ttl=0.0)
    provider = start_otlp_export(reader, metric_reader=metric_reader)
    assert provider is not None
    try:
        data = metric_reader.get_metrics_data()
    finally:
        provider.shutdown()
        reader.close()
    assert data is not None
    points: Points = {}
    for resource_metrics in data.resource_metrics:
        assert resource_metrics.resource.attributes["service.name"] == "tasklens-monitor"
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    points[(metric.name, tuple(sorted((point.attributes or {}).items())))] = point.value
    return points


#: The attribute every Dramatiq broker gauge carries.
DRAMATIQ = ("messaging.system", "dramatiq")


def depth(queue: str, state: str) -> tuple[str, tuple[tuple[str, object], ...]]:
    return (
        "tasklens.queue.depth",
        (("messaging.destination.name", queue), ("messaging.system", "dramatiq"), ("state", state)),
    )


def test_gauges_carry_the_semantic_names_and_omit_unknowns(fake: FakeInspector) -> None:
    fake.add_queue(QueueStats("rabbit", ready=7, delayed=None, in_flight=None, dead=1, oldest_age=None))

    points = collect(fake)

    assert points[depth("default", "ready")] == 3
    assert points[depth("default", "in_flight")] == 1
    assert points[depth("rabbit", "ready")] == 7
    assert depth("rabbit", "delayed") not in points
    assert (
        points[("tasklens.queue.oldest_message.age", (("messaging.destination.name", "default"), DRAMATIQ))]
        == 12.5
    )
    assert (
        "tasklens.queue.oldest_message.age",
        (("messaging.destination.name", "rabbit"), DRAMATIQ),
    ) not in points
    assert points[("tasklens.workers", (DRAMATIQ,))] == 2
    assert points[("tasklens.broker.up", ())] == 1


def test_broker_down_exports_up_0_only(fake: FakeInspector) -> None:
    fake.down = True

    points = collect(fake)

    assert points[("tasklens.broker.up", ())] == 0
    assert set(points) == {("tasklens.broker.up", ()), ("tasklens.broker.scrape.duration", ())}


@pytest.mark.parametrize(
    ("environment", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318/v1/metrics"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_export_only_when_an_endpoint_is_set(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], enabled: bool
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    assert otlp_export_enabled() is enabled


def test_the_monitor_exports_the_true_depth_to_an_otlp_receiver(queue: PopulatedQueue) -> None:
    def ready_points(receiver: OtlpReceiver) -> list[float]:
        return [
            point.value
            for point in receiver.metric_points()
            if point.name == "tasklens.queue.depth"
            and point.attributes
            == {"messaging.system": "dramatiq", "messaging.destination.name": queue.queue, "state": "ready"}
        ]

    with OtlpReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "300"}
        with running_monitor("--broker", queue.url, env=env):
            assert receiver.wait_for(lambda r: bool(ready_points(r)), timeout=EXPORT_DEADLINE)

    assert ready_points(receiver)[0] == queue.ready == 3
    assert receiver.rejected == 0
