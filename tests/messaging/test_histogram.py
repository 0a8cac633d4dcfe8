"""Thread histograms: what every reader of an SDK meter provider collects is the SDK histogram's points."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.metrics import (
    AlwaysOnExemplarFilter,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tasklens import semconv
from tasklens.messaging.histogram import ThreadHistogram, create_histogram

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


def _pair(**options: Any) -> tuple[Any, InMemoryMetricReader, Any, InMemoryMetricReader]:
    """The same histogram on two providers: pre-aggregated, and the SDK's (a view that matches
    nothing keeps the SDK's own instrument and changes nothing else)."""
    ours_reader, sdk_reader = InMemoryMetricReader(), InMemoryMetricReader()
    ours_provider = MeterProvider(metric_readers=[ours_reader], **options)
    sdk_provider = MeterProvider(
        metric_readers=[sdk_reader], views=[View(instrument_name="unrelated")], **options
    )
    ours = create_histogram(ours_provider.get_meter(SCOPE.name), SPEC, SCOPE, ours_provider)
    sdk = create_histogram(sdk_provider.get_meter(SCOPE.name), SPEC, SCOPE, sdk_provider)
    assert isinstance(ours, ThreadHistogram) and not isinstance(sdk, ThreadHistogram)
    return ours, ours_reader, sdk, sdk_reader


def test_points_equal_the_sdk_histogram_read_by_an_in_memory_reader() -> None:
    rng = random.Random(3)
    ours, ours_reader, sdk, sdk_reader = _pair()
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

    expected = _points(sdk_reader.get_metrics_data(), SPEC.name)
    got = _points(ours_reader.get_metrics_data(), SPEC.name)
    assert len(expected) == 2
    assert {k: _comparable(p) for k, p in got.items()} == {k: _comparable(p) for k, p in expected.items()}
    assert all(sum(p.bucket_counts) == p.count == 4_000 for p in got.values())
    assert all(p.exemplars == [] for p in got.values())
    # Cumulative: a second collection has everything again, plus what came since.
    ours.record("a", attribute_sets[0], 0.1)
    assert _points(ours_reader.get_metrics_data(), SPEC.name)[frozenset({("queue", "a")})].count == 4_001


def _exemplars(reader: InMemoryMetricReader) -> list[tuple]:
    (point,) = _points(reader.get_metrics_data(), SPEC.name).values()
    return [(e.value, e.span_id, e.trace_id, e.filtered_attributes or {}) for e in point.exemplars]


def test_exemplars_follow_the_providers_filter_as_the_sdk_does() -> None:
    tracer = TracerProvider().get_tracer("t")
    for exemplar_filter in (TraceBasedExemplarFilter(), AlwaysOnExemplarFilter()):
        ours, ours_reader, sdk, sdk_reader = _pair(exemplar_filter=exemplar_filter)
        for value in (0.001, 0.2, 0.3):
            for histogram in (ours, sdk):
                histogram.record("q", {"queue": "q"}, value)  # no span current
        with tracer.start_as_current_span("sampled"):
            for histogram in (ours, sdk):
                histogram.record("q", {"queue": "q"}, 0.22)
                histogram.record("q", {"queue": "q"}, 7.0)
        ours_exemplars = _exemplars(ours_reader)
        assert ours_exemplars == _exemplars(sdk_reader)
        assert len(ours_exemplars) >= 2
        # Each collection gets the exemplars offered since the previous one.
        assert _exemplars(ours_reader) == _exemplars(sdk_reader) == []


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


def test_a_counter_and_the_histogram_of_one_meter_share_its_scope() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "h"}))
    meter = provider.get_meter(SCOPE.name, SCOPE.version, schema_url=SCOPE.schema_url)
    histogram = create_histogram(meter, SPEC, SCOPE, provider)
    meter.create_counter("messages").add(3, {"queue": "q"})
    provider.get_meter("someone.else").create_counter("their.counter").add(1)
    histogram.record("q", {"queue": "q"}, 0.2)
    histogram.record("q", {"queue": "q"}, 7.0)

    data = reader.get_metrics_data()
    assert data is not None
    (resource_metrics,) = data.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "h"
    scopes = {sm.scope.name: sm for sm in resource_metrics.scope_metrics}
    assert set(scopes) == {SCOPE.name, "someone.else"}
    ours = scopes[SCOPE.name]
    assert ours.scope == SCOPE and ours.schema_url == semconv.SCHEMA_URL
    metrics = {metric.name: metric for metric in ours.metrics}
    assert set(metrics) == {"messages", SPEC.name}
    histogram_metric = metrics[SPEC.name]
    assert (histogram_metric.unit, histogram_metric.description) == (SPEC.unit, SPEC.description)
    assert histogram_metric.data.aggregation_temporality == AggregationTemporality.CUMULATIVE
    (point,) = histogram_metric.data.data_points
    assert (point.count, point.sum, point.min, point.max) == (2, 7.2, 0.2, 7.0)
    assert list(point.explicit_bounds) == list(SPEC.buckets or ())


def test_a_histogram_alone_still_reaches_the_reader() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    histogram = create_histogram(provider.get_meter(SCOPE.name), SPEC, SCOPE, provider)
    assert reader.get_metrics_data() is None or _points(reader.get_metrics_data(), SPEC.name) == {}
    histogram.record("q", {"queue": "q"}, 1.0)
    data = reader.get_metrics_data()
    (scope_metrics,) = data.resource_metrics[0].scope_metrics  # type: ignore[union-attr]
    assert scope_metrics.scope == SCOPE and [m.name for m in scope_metrics.metrics] == [SPEC.name]


def test_a_periodic_exporting_reader_exports_the_histogram() -> None:
    exporter = CapturingExporter()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
    provider = MeterProvider(metric_readers=[reader])
    histogram = create_histogram(provider.get_meter(SCOPE.name), SPEC, SCOPE, provider)
    assert isinstance(histogram, ThreadHistogram)
    histogram.record("q", {"queue": "q"}, 0.5)
    provider.force_flush()
    assert [p.count for p in _points(exporter.batches[-1], SPEC.name).values()] == [1]
    provider.shutdown()


def test_providers_whose_readers_could_not_take_it_keep_the_sdk_histogram() -> None:
    delta = InMemoryMetricReader(preferred_temporality={SdkHistogram: AggregationTemporality.DELTA})
    cases = [
        MeterProvider(metric_readers=[delta]),
        MeterProvider(metric_readers=[InMemoryMetricReader()], views=[View(instrument_name="x")]),
    ]
    for provider in cases:
        histogram = create_histogram(provider.get_meter(SCOPE.name), SPEC, SCOPE, provider)
        assert not isinstance(histogram, ThreadHistogram)
    reader = delta
    histogram = create_histogram(cases[0].get_meter(SCOPE.name), SPEC, SCOPE, cases[0])
    histogram.record("q", {"queue": "q"}, 0.3)
    (point,) = _points(reader.get_metrics_data(), SPEC.name).values()
    assert (point.count, point.sum) == (1, 0.3)


def test_a_forked_child_starts_from_zero() -> None:
    import os

    histogram = ThreadHistogram(SPEC)
    histogram.record("k", {"queue": "q"}, 1.0)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        histogram.record("k", {"queue": "q"}, 2.0)
        os.write(write, str([(p.count, p.sum) for p in histogram.points(0)]).encode())
        os._exit(0)
    os.close(write)
    child_points = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    assert child_points == "[(1, 2.0)]"
    assert [(p.count, p.sum) for p in histogram.points(0)] == [(1, 1.0)]
