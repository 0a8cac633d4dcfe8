"""Histograms that cost a few list updates on the task path and reach the SDK at collection.

The SDK's synchronous ``Histogram.record`` builds a measurement, cleans and hashes its
attributes, takes a lock and offers an exemplar on every call (5-8 µs); the SDK has no bound or
pre-aggregated instrument to avoid that. So where ``tasklens.setup()`` built the meter provider,
each thread aggregates into a table of its own (bucket counts, sum, min, max per attribute set: a
``bisect`` and five list updates, no lock) and the provider's metric exporters add the result, as
ordinary OTLP histogram points with the semantic conventions' bucket boundaries, to every batch
the reader collected. Anywhere else (a user's own ``MeterProvider``, delta temporality, exemplars
asked for) :func:`create_histogram` returns the SDK's instrument behind the same ``record`` call,
so every reader and view a user configures keeps working.

Adopting it in an instrumentation::

    from tasklens.messaging.histogram import create_histogram

    duration = create_histogram(meter, semconv.PROCESS_DURATION, scope, meter_provider)
    duration.record(route, route_attributes, elapsed_seconds)   # key: any hashable naming the set

and, where the SDK is bootstrapped, :func:`export_histograms` wraps each metric exporter of the
provider it builds (``tasklens.telemetry`` does this in ``setup()``).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tasklens.semconv import MetricSpec

__all__ = [
    "HistogramRecorder",
    "PreAggregatedHistograms",
    "ThreadHistogram",
    "create_histogram",
    "export_histograms",
]

#: Positions in a thread's cell: sum, min, max, then one count per bucket.
_SUM, _MIN, _MAX, _BUCKETS = 0, 1, 2, 3


class HistogramRecorder(Protocol):
    """What the task path calls: one value for the attribute set named by ``key``."""

    def record(self, key: Hashable, attributes: Mapping[str, Any], value: float) -> None: ...


class _SdkRecorder:
    """The SDK's synchronous histogram behind :class:`HistogramRecorder`'s call."""

    __slots__ = ("_instrument",)

    def __init__(self, instrument: metrics.Histogram) -> None:
        self._instrument = instrument

    def record(self, key: Hashable, attributes: Mapping[str, Any], value: float) -> None:
        self._instrument.record(value, attributes)


class _Local(threading.local):
    # A class default keeps the first lookup on each thread an attribute read, not a failed one.
    table: dict[Hashable, list[float]] | None = None


class ThreadHistogram:
    """An explicit-bucket histogram aggregated per thread, summed when it is collected.

    Buckets follow the OpenTelemetry data model: bucket ``i`` holds values in
    ``(boundaries[i-1], boundaries[i]]``, the last one everything above the last boundary.
    The temporality is cumulative from the first value of each attribute set.

    Parameters:
      spec(MetricSpec): Name, unit, description and bucket boundaries (seconds, for durations).

    Example:
      >>> wait = ThreadHistogram(semconv.MESSAGE_QUEUE_WAIT)
      >>> wait.record(route, {"messaging.destination.name": "default"}, 0.25)
      >>> wait.points(time.time_ns())
    """

    def __init__(self, spec: MetricSpec) -> None:
        self.spec = spec
        self.boundaries: tuple[float, ...] = tuple(spec.buckets or ())
        self._width = len(self.boundaries) + 1
        self._local = _Local()
        self._lock = threading.Lock()
        self._attributes: dict[Hashable, Mapping[str, Any]] = {}
        self._started: dict[frozenset[tuple[str, Any]], int] = {}
        self._tables: list[tuple[weakref.ref[threading.Thread], dict[Hashable, list[float]]]] = []
        self._retired: dict[Hashable, list[float]] = {}
        _HISTOGRAMS.add(self)

    def __repr__(self) -> str:
        return f"<ThreadHistogram {self.spec.name}>"

    def record(self, key: Hashable, attributes: Mapping[str, Any], value: float) -> None:
        """Add ``value`` to the attribute set ``key`` (reported with ``attributes``)."""
        table = self._local.table
        if table is None:
            table = self._new_table()
        cell = table.get(key)
        if cell is None:
            cell = self._new_cell(table, key, attributes)
        cell[_BUCKETS + bisect_left(self.boundaries, value)] += 1
        cell[_SUM] += value
        if value < cell[_MIN]:
            cell[_MIN] = value
        if value > cell[_MAX]:
            cell[_MAX] = value

    def _new_table(self) -> dict[Hashable, list[float]]:
        table: dict[Hashable, list[float]] = {}
        self._local.table = table
        with self._lock:
            self._tables.append((weakref.ref(threading.current_thread()), table))
        return table

    def _new_cell(
        self, table: dict[Hashable, list[float]], key: Hashable, attributes: Mapping[str, Any]
    ) -> list[float]:
        with self._lock:
            self._attributes.setdefault(key, attributes)
            self._started.setdefault(frozenset(attributes.items()), time.time_ns())
        cell = _empty(self._width)
        table[key] = cell
        return cell

    def _merged(self) -> dict[Hashable, list[float]]:
        with self._lock:
            live = []
            for thread_ref, table in self._tables:
                thread = thread_ref()
                if thread is None or not thread.is_alive():
                    for key, cell in list(table.items()):
                        _merge(self._retired.setdefault(key, _empty(self._width)), cell)
                else:
                    live.append((thread_ref, table))
            self._tables = live
            merged = {key: list(cell) for key, cell in self._retired.items()}
            for _, table in live:
                for key, cell in list(table.items()):
                    # list(cell) is one step under the GIL: a consistent copy of that cell.
                    _merge(merged.setdefault(key, _empty(self._width)), list(cell))
        return merged

    def points(self, now_ns: int) -> list[HistogramDataPoint]:
        """One cumulative data point per attribute set recorded so far."""
        cells: dict[frozenset[tuple[str, Any]], list[float]] = {}
        attributes: dict[frozenset[tuple[str, Any]], Mapping[str, Any]] = {}
        for key, cell in self._merged().items():
            identity = frozenset(self._attributes[key].items())
            _merge(cells.setdefault(identity, _empty(self._width)), cell)
            attributes.setdefault(identity, self._attributes[key])
        points = []
        for identity, cell in cells.items():
            counts = [int(c) for c in cell[_BUCKETS:]]
            count = sum(counts)
            if count == 0:
                continue
            points.append(
                HistogramDataPoint(
                    attributes=dict(attributes[identity]),
                    start_time_unix_nano=self._started.get(identity, now_ns),
                    time_unix_nano=now_ns,
                    count=count,
                    sum=cell[_SUM],
                    bucket_counts=counts,
                    explicit_bounds=list(self.boundaries),
                    min=cell[_MIN],
                    max=cell[_MAX],
                )
            )
        return points

    def metric(self, now_ns: int) -> Metric | None:
        """The histogram as an SDK ``Metric`` (cumulative), or None before any value."""
        points = self.points(now_ns)
        if not points:
            return None
        return Metric(
            name=self.spec.name,
            description=self.spec.description,
            unit=self.spec.unit,
            data=Histogram(data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE),
        )

    def _reset_after_fork(self) -> None:
        # The child starts from zero: the parent's values are the parent's series.
        self._lock = threading.Lock()
        self._local = _Local()
        self._tables = []
        self._retired = {}
        self._started = {}


def _empty(width: int) -> list[float]:
    return [0.0, float("inf"), float("-inf")] + [0.0] * width


def _merge(into: list[float], cell: Sequence[float]) -> None:
    into[_SUM] += cell[_SUM]
    into[_MIN] = min(into[_MIN], cell[_MIN])
    into[_MAX] = max(into[_MAX], cell[_MAX])
    for index in range(_BUCKETS, len(cell)):
        into[index] += cell[index]


class PreAggregatedHistograms:
    """The thread histograms of one meter provider, added to what its exporters export.

    Parameters:
      resource(Resource): The provider's resource, for a batch that holds no other metric.

    Example:
      >>> histograms = PreAggregatedHistograms(resource)
      >>> reader = PeriodicExportingMetricReader(histograms.exporter(OTLPMetricExporter()))
      >>> provider = MeterProvider(resource=resource, metric_readers=[reader])
      >>> export_histograms(provider, histograms)
    """

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self._lock = threading.Lock()
        self._histograms: dict[tuple[InstrumentationScope, str], ThreadHistogram] = {}

    def histogram(self, scope: InstrumentationScope, spec: MetricSpec) -> ThreadHistogram:
        """The histogram ``spec`` names in ``scope``: one per name, shared by every caller."""
        with self._lock:
            existing = self._histograms.get((scope, spec.name))
            if existing is None:
                existing = self._histograms[(scope, spec.name)] = ThreadHistogram(spec)
            return existing

    def add_to(self, metrics_data: MetricsData) -> MetricsData:
        """``metrics_data`` with every histogram's points in the scope it belongs to."""
        now_ns = time.time_ns()
        with self._lock:
            histograms = list(self._histograms.items())
        extra: dict[InstrumentationScope, list[Metric]] = {}
        for (scope, _), histogram in histograms:
            metric = histogram.metric(now_ns)
            if metric is not None:
                extra.setdefault(scope, []).append(metric)
        if not extra:
            return metrics_data
        resource_metrics = list(metrics_data.resource_metrics) if metrics_data is not None else []
        if not resource_metrics:
            resource_metrics = [ResourceMetrics(self.resource, [], self.resource.schema_url)]
        first = resource_metrics[0]
        scopes = []
        for scope_metrics in first.scope_metrics:
            added = extra.pop(scope_metrics.scope, None)
            if added:
                scope_metrics = ScopeMetrics(
                    scope_metrics.scope, [*scope_metrics.metrics, *added], scope_metrics.schema_url
                )
            scopes.append(scope_metrics)
        scopes.extend(ScopeMetrics(scope, added, scope.schema_url or "") for scope, added in extra.items())
        resource_metrics[0] = ResourceMetrics(first.resource, scopes, first.schema_url)
        return MetricsData(resource_metrics=resource_metrics)

    def exporter(self, inner: MetricExporter) -> MetricExporter | None:
        """``inner`` adding these histograms to every export, or None when it prefers delta
        histograms (cumulative thread totals cannot give a window's min and max)."""
        if (inner._preferred_temporality or {}).get(SdkHistogram) == AggregationTemporality.DELTA:
            return None
        return _WithHistograms(inner, self)


class _WithHistograms(MetricExporter):
    """A metric exporter that adds the pre-aggregated histograms, then lets ``inner`` export."""

    def __init__(self, inner: MetricExporter, histograms: PreAggregatedHistograms) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self._histograms = histograms

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self.inner.export(
            self._histograms.add_to(metrics_data), timeout_millis=timeout_millis, **kwargs
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


#: Meter providers whose exporters add pre-aggregated histograms.
_PROVIDERS: weakref.WeakKeyDictionary[MeterProvider, PreAggregatedHistograms] = weakref.WeakKeyDictionary()


def export_histograms(meter_provider: MeterProvider, histograms: PreAggregatedHistograms) -> None:
    """Declare that every exporter of ``meter_provider`` was wrapped by ``histograms.exporter``.

    From then on :func:`create_histogram` hands out thread histograms for this provider.
    """
    _PROVIDERS[meter_provider] = histograms


def create_histogram(
    meter: metrics.Meter,
    spec: MetricSpec,
    scope: InstrumentationScope,
    meter_provider: metrics.MeterProvider | None = None,
) -> HistogramRecorder:
    """A histogram for ``spec``: aggregated per thread where the provider's exporters add it,
    the SDK's instrument from ``meter`` otherwise.

    Parameters:
      meter(Meter): The instrumentation's meter (for the SDK's instrument).
      spec(MetricSpec): Name, unit, description and bucket boundaries.
      scope(InstrumentationScope): The meter's name, version and schema URL: where the points go.
      meter_provider(MeterProvider): The provider the meter came from; None for the global one.
    """
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    try:
        histograms = _PROVIDERS.get(provider)  # type: ignore[call-overload]
    except TypeError:  # a provider that cannot be weakly referenced was never registered
        histograms = None
    if histograms is not None:
        return histograms.histogram(scope, spec)
    return _SdkRecorder(
        meter.create_histogram(
            spec.name,
            spec.unit,
            spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets or ()),
        )
    )


#: Every thread histogram, so that a forked child can reset them.
_HISTOGRAMS: weakref.WeakSet[ThreadHistogram] = weakref.WeakSet()


def _reset_all_after_fork() -> None:
    for histogram in list(_HISTOGRAMS):
        histogram._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all_after_fork)
