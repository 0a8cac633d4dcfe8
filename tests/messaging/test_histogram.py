"""Thread histograms: the same OTLP points as the SDK's histogram, added by the provider's exporters."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tasklens import semconv
from tasklens.messaging.histogram import (
    PreAggregatedHistograms,
    ThreadHistogram,
    create_histogram,
    export_histograms,
)

SCOPE = InstrumentationScope("tasklens.test", "1.0", semconv.SCHEMA_URL)
SPEC = semconv.PROCESS_DURATION


class CapturingExporter(MetricExporter):
    """Keeps every batch it is given."""

    def __init__(self, temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE) -> None:
        super().__init__(preferred_temporality={SdkHistogram: temporality})
        self.batches: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def _points(metrics_data: MetricsData | None, name: str) -> dict[frozenset, HistogramDataPoint]:
    assert metrics_data is not None
    found: dict[frozenset, HistogramDataPoint] = {}
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        found[frozenset(point.attributes.items())] = point
    return found


def _comparable(point: HistogramDataPoint) -> tuple:
    return (
        point.count,
        round(point.sum, 6),  # summed in another order: the last digits differ
        tuple(point.bucket_counts),
        tuple(point.explicit_bounds),
        point.min,
        point.max,
        dict(point.attributes),
    )


def _values(rng: random.Random, count: int, buckets: Sequence[float]) -> list[float]:
    # Values on the boundaries themselves, between them, and beyond the last one.
    values = [rng.choice(buckets) for _ in range(count // 4)]
    values += [rng.uniform(0, buckets[-1] * 1.5) for _ in range(count - len(values))]
    return values


def test_points_equal_the_sdk_histogram_read_by_an_in_memory_reader() -> None:
    rng = random.Random(3)
    reader = InMemoryMetricReader()
    sdk = create_histogram(
        MeterProvider(metric_readers=[reader]).get_meter("t"), SPEC, SCOPE, MeterProvider()
    )
    ours = ThreadHistogram(SPEC)
    attribute_sets = [{"queue": "a"}, {"queue": "b", "error.type": "ValueError"}]
    per_thread = [_values(rng, 2_000, SPEC.buckets or ()) for _ in range(4)]

    def work(values: list[float]) -> None:
        for index, value in enumerate(values):
            attributes = attribute_sets[index % 2]
            key = attributes["queue"]
            sdk.record(key, attributes, value)
            ours.record(key, attributes, value)

    threads = [threading.Thread(target=work, args=(values,)) for values in per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = _points(reader.get_metrics_data(), SPEC.name)
    got = {frozenset(p.attributes.items()): p for p in ours.points(0)}
    assert len(expected) == 2
    assert {k: _comparable(p) for k, p in got.items()} == {k: _comparable(p) for k, p in expected.items()}
    assert all(sum(p.bucket_counts) == p.count == 4_000 for p in got.values())


def test_keys_that_share_attributes_make_one_point() -> None:
    histogram = ThreadHistogram(SPEC)
    histogram.record(("route", 1), {"queue": "q"}, 0.5)
    histogram.record(("route", 2), {"queue": "q"}, 2.0)
    (point,) = histogram.points(0)
    assert (point.count, point.sum, point.min, point.max) == (2, 2.5, 0.5, 2.0)


def test_values_of_finished_threads_stay() -> None:
    histogram = ThreadHistogram(SPEC)
    thread = threading.Thread(target=histogram.record, args=("k", {"queue": "q"}, 1.0))
    thread.start()
    thread.join()
    del thread
    assert [p.count for p in histogram.points(0)] == [1]
    histogram.record("k", {"queue": "q"}, 3.0)
    assert [(p.count, p.sum) for p in histogram.points(0)] == [(2, 4.0)]


def _provider_with_histograms(
    exporter: CapturingExporter,
) -> tuple[MeterProvider, PreAggregatedHistograms, PeriodicExportingMetricReader]:
    resource = Resource.create({"service.name": "histogram-test"})
    histograms = PreAggregatedHistograms(resource)
    wrapped = histograms.exporter(exporter)
    assert wrapped is not None
    reader = PeriodicExportingMetricReader(wrapped, export_interval_millis=math.inf)
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    export_histograms(provider, histograms)
    return provider, histograms, reader


def test_the_exporter_adds_the_histogram_to_the_scope_of_its_meter() -> None:
    exporter = CapturingExporter()
    provider, _, _ = _provider_with_histograms(exporter)
    meter = provider.get_meter(SCOPE.name, SCOPE.version, schema_url=SCOPE.schema_url)
    histogram = create_histogram(meter, SPEC, SCOPE, provider)
    assert isinstance(histogram, ThreadHistogram)
    meter.create_counter("messages").add(3, {"queue": "q"})
    histogram.record("q", {"queue": "q"}, 0.2)
    histogram.record("q", {"queue": "q"}, 7.0)

    provider.force_flush()
    (batch,) = exporter.batches
    (resource_metrics,) = batch.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "histogram-test"
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope == SCOPE
    metrics = {metric.name: metric for metric in scope_metrics.metrics}
    assert set(metrics) == {"messages", SPEC.name}
    histogram_metric = metrics[SPEC.name]
    assert (histogram_metric.unit, histogram_metric.description) == (SPEC.unit, SPEC.description)
    assert histogram_metric.data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    (point,) = histogram_metric.data.data_points
    assert (point.count, point.sum, point.min, point.max) == (2, 7.2, 0.2, 7.0)
    assert list(point.explicit_bounds) == list(SPEC.buckets or ())

    # Cumulative: the next export has everything again, plus what came since.
    histogram.record("q", {"queue": "q"}, 0.1)
    provider.force_flush()
    (point,) = _points(exporter.batches[-1], SPEC.name).values()
    assert point.count == 3
    provider.shutdown()


def test_a_scope_with_nothing_else_gets_its_own_scope_metrics() -> None:
    exporter = CapturingExporter()
    provider, _, _ = _provider_with_histograms(exporter)
    other = provider.get_meter("someone.else")
    other.create_counter("their.counter").add(1)
    histogram = create_histogram(provider.get_meter(SCOPE.name), SPEC, SCOPE, provider)
    histogram.record("q", {"queue": "q"}, 1.0)
    provider.force_flush()
    scopes = {sm.scope.name: sm for sm in exporter.batches[-1].resource_metrics[0].scope_metrics}
    assert set(scopes) == {"someone.else", SCOPE.name}
    assert [m.name for m in scopes[SCOPE.name].metrics] == [SPEC.name]
    assert scopes[SCOPE.name].schema_url == semconv.SCHEMA_URL
    provider.shutdown()


def test_nothing_recorded_adds_nothing() -> None:
    exporter = CapturingExporter()
    provider, _, _ = _provider_with_histograms(exporter)
    meter = provider.get_meter(SCOPE.name)
    create_histogram(meter, SPEC, SCOPE, provider)
    meter.create_counter("messages").add(1)
    provider.force_flush()
    assert _points(exporter.batches[-1], SPEC.name) == {}
    provider.shutdown()


def test_an_exporter_that_wants_delta_histograms_is_not_wrapped() -> None:
    histograms = PreAggregatedHistograms(Resource.create({}))
    assert histograms.exporter(CapturingExporter(AggregationTemporality.DELTA)) is None


def test_a_users_own_meter_provider_gets_the_sdk_histogram() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = create_histogram(provider.get_meter(SCOPE.name), SPEC, SCOPE, provider)
    assert not isinstance(histogram, ThreadHistogram)
    histogram.record("q", {"queue": "q"}, 0.3)
    (point,) = _points(reader.get_metrics_data(), SPEC.name).values()
    assert (point.count, point.sum) == (1, 0.3)
