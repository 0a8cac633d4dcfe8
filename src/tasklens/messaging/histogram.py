"""Histograms that cost a few list updates on the task path and reach the SDK at collection.

The SDK's synchronous ``Histogram.record`` builds a measurement, cleans and hashes its
attributes, takes a lock and offers an exemplar on every call (5-8 µs); the SDK has no bound or
pre-aggregated instrument to avoid that (opentelemetry-python #5450). So, on an SDK
``MeterProvider``, each thread aggregates into a table of its own (bucket counts, sum, min, max
per attribute set: a ``bisect`` and five list updates, no lock) and every metric reader of the
provider gets the result in what it collects: ordinary OTLP histogram points, cumulative, with
the semantic conventions' bucket boundaries, and exemplars as the provider's exemplar filter
asks (the last sampled value per bucket, like the SDK's aligned-bucket reservoir).

Where that cannot be done faithfully (not an SDK provider, views configured, a reader that
wants delta histograms, a custom exemplar filter or meter configurator, an SDK whose internals
differ), :func:`create_histogram` returns the SDK's own instrument behind the same ``record``
call, so every reader, view and exporter a user configures keeps working.

Adopting it in an instrumentation::

    from tasklens.messaging.histogram import create_histogram

    scope = InstrumentationScope(name, version, schema_url)    # the meter's own scope
    duration = create_histogram(meter, semconv.PROCESS_DURATION, scope, meter_provider)
    duration.record(route, route_attributes, elapsed_seconds)   # key: any hashable naming the set
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Exemplar,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tasklens.semconv import MetricSpec

__all__ = ["EXEMPLARS", "HistogramRecorder", "PreAggregatedHistograms", "ThreadHistogram", "create_histogram"]

#: Positions in a thread's cell: sum, min, max, then one count per bucket, then one exemplar
#: slot per bucket (None, or the last offered ``(value, time_ns, span_context)``).
_SUM, _MIN, _MAX, _BUCKETS = 0, 1, 2, 3

#: Exemplar policies, as the SDK's exemplar filters name them.
EXEMPLARS = ("always_off", "trace_based", "always_on")

#: The exemplar policy of each SDK filter class; any other filter keeps the SDK's histograms.
_FILTERS = {
    AlwaysOffExemplarFilter: "always_off",
    TraceBasedExemplarFilter: "trace_based",
    AlwaysOnExemplarFilter: "always_on",
}


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
    table: dict[Hashable, list[Any]] | None = None


class ThreadHistogram:
    """An explicit-bucket histogram aggregated per thread, summed when it is collected.

    Buckets follow the OpenTelemetry data model (and the SDK): bucket ``i`` holds values in
    ``(boundaries[i-1], boundaries[i]]``, the last one everything above the last boundary.
    Points are cumulative from the first value of each attribute set. Exemplars: with
    ``trace_based`` the last value per bucket recorded while a sampled span was current, with
    ``always_on`` the last value per bucket; each reader gets those offered since it last
    collected.

    Parameters:
      spec(MetricSpec): Name, unit, description and bucket boundaries (seconds, for durations).
      exemplars(str): One of :data:`EXEMPLARS`. Defaults to ``always_off``.

    Example:
      >>> wait = ThreadHistogram(semconv.MESSAGE_QUEUE_WAIT)
      >>> wait.record(route, {"messaging.destination.name": "default"}, 0.25)
      >>> wait.points(time.time_ns())
    """

    def __init__(self, spec: MetricSpec, exemplars: str = "always_off") -> None:
        if exemplars not in EXEMPLARS:
            raise ValueError(f"exemplars must be one of {', '.join(EXEMPLARS)}, not {exemplars!r}")
        self.spec = spec
        self.boundaries: tuple[float, ...] = tuple(spec.buckets or ())
        self._width = len(self.boundaries) + 1
        self._exemplar_slots = _BUCKETS + self._width
        self._sampled_only = exemplars == "trace_based"
        self._exemplars = exemplars != "always_off"
        self._local = _Local()
        self._lock = threading.Lock()
        self._attributes: dict[Hashable, Mapping[str, Any]] = {}
        self._started: dict[frozenset[tuple[str, Any]], int] = {}
        self._tables: list[tuple[weakref.ref[threading.Thread], dict[Hashable, list[Any]]]] = []
        self._retired: dict[Hashable, list[Any]] = {}
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
        index = bisect_left(self.boundaries, value)
        cell[_BUCKETS + index] += 1
        cell[_SUM] += value
        if value < cell[_MIN]:
            cell[_MIN] = value
        if value > cell[_MAX]:
            cell[_MAX] = value
        if self._exemplars:
            span_context = trace.get_current_span().get_span_context()
            if not self._sampled_only or (span_context.is_valid and span_context.trace_flags.sampled):
                cell[self._exemplar_slots + index] = (value, time.time_ns(), span_context)

    def _new_table(self) -> dict[Hashable, list[Any]]:
        table: dict[Hashable, list[Any]] = {}
        self._local.table = table
        with self._lock:
            self._tables.append((weakref.ref(threading.current_thread()), table))
        return table

    def _new_cell(
        self, table: dict[Hashable, list[Any]], key: Hashable, attributes: Mapping[str, Any]
    ) -> list[Any]:
        with self._lock:
            self._attributes.setdefault(key, attributes)
            self._started.setdefault(frozenset(attributes.items()), time.time_ns())
        cell = self._empty()
        table[key] = cell
        return cell

    def _empty(self) -> list[Any]:
        return [0.0, float("inf"), float("-inf")] + [0] * self._width + [None] * self._width

    def _merge(self, into: list[Any], cell: list[Any]) -> None:
        into[_SUM] += cell[_SUM]
        into[_MIN] = min(into[_MIN], cell[_MIN])
        into[_MAX] = max(into[_MAX], cell[_MAX])
        for index in range(_BUCKETS, self._exemplar_slots):
            into[index] += cell[index]
        for index in range(self._exemplar_slots, len(cell)):
            offered = cell[index]
            if offered is not None and (into[index] is None or offered[1] > into[index][1]):
                into[index] = offered

    def _merged(self) -> dict[Hashable, list[Any]]:
        with self._lock:
            live = []
            for thread_ref, table in self._tables:
                thread = thread_ref()
                if thread is None or not thread.is_alive():
                    for key, cell in list(table.items()):
                        self._merge(self._retired.setdefault(key, self._empty()), cell)
                else:
                    live.append((thread_ref, table))
            self._tables = live
            merged = {key: list(cell) for key, cell in self._retired.items()}
            for _, table in live:
                for key, cell in list(table.items()):
                    # list(cell) is one step under the GIL: a consistent copy of that cell.
                    self._merge(merged.setdefault(key, self._empty()), list(cell))
        return merged

    def points(self, now_ns: int, exemplars_since_ns: int = 0) -> list[HistogramDataPoint]:
        """One cumulative data point per attribute set recorded so far, with the exemplars
        offered after ``exemplars_since_ns``."""
        cells: dict[frozenset[tuple[str, Any]], list[Any]] = {}
        attributes: dict[frozenset[tuple[str, Any]], Mapping[str, Any]] = {}
        for key, cell in self._merged().items():
            identity = frozenset(self._attributes[key].items())
            self._merge(cells.setdefault(identity, self._empty()), cell)
            attributes.setdefault(identity, self._attributes[key])
        points = []
        for identity, cell in cells.items():
            counts = [int(c) for c in cell[_BUCKETS : self._exemplar_slots]]
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
                    exemplars=_exemplars(cell[self._exemplar_slots :], exemplars_since_ns),
                )
            )
        return points

    def metric(self, now_ns: int, exemplars_since_ns: int = 0) -> Metric | None:
        """The histogram as an SDK ``Metric`` (cumulative), or None before any value."""
        points = self.points(now_ns, exemplars_since_ns)
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


def _exemplars(slots: list[Any], since_ns: int) -> list[Exemplar]:
    found = []
    for offered in slots:
        if offered is None or offered[1] <= since_ns:
            continue
        value, time_ns, span_context = offered
        valid = span_context.is_valid
        found.append(
            Exemplar(
                {},
                value,
                time_ns,
                span_context.span_id if valid else None,
                span_context.trace_id if valid else None,
            )
        )
    return found


class PreAggregatedHistograms:
    """The thread histograms of one meter provider, added to what each of its readers collects.

    Parameters:
      resource(Resource | callable): The provider's resource (or what returns it, as it changes
        in a forked child), for a collection that holds no other metric.
      exemplars(str): The provider's exemplar policy, one of :data:`EXEMPLARS`.
    """

    def __init__(self, resource: Resource | Callable[[], Resource], exemplars: str = "always_off") -> None:
        self._resource = resource
        self.exemplars = exemplars
        self._lock = threading.Lock()
        self._histograms: dict[tuple[InstrumentationScope, str], ThreadHistogram] = {}
        self._collected: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    def histogram(self, scope: InstrumentationScope, spec: MetricSpec) -> ThreadHistogram:
        """The histogram ``spec`` names in ``scope``: one per name, shared by every caller."""
        with self._lock:
            existing = self._histograms.get((scope, spec.name))
            if existing is None:
                existing = self._histograms[(scope, spec.name)] = ThreadHistogram(spec, self.exemplars)
            return existing

    def add_to(self, metrics_data: MetricsData | None, reader: Any = None) -> MetricsData | None:
        """``metrics_data`` with every histogram's points in the scope it belongs to."""
        now_ns = time.time_ns()
        with self._lock:
            histograms = list(self._histograms.items())
            since = self._collected.get(reader, 0) if reader is not None else 0
            if reader is not None:
                self._collected[reader] = now_ns
        extra: dict[InstrumentationScope, list[Metric]] = {}
        for (scope, _), histogram in histograms:
            metric = histogram.metric(now_ns, since)
            if metric is not None:
                extra.setdefault(scope, []).append(metric)
        if not extra:
            return metrics_data
        resource_metrics = list(metrics_data.resource_metrics) if metrics_data is not None else []
        if not resource_metrics:
            resource = self._resource if isinstance(self._resource, Resource) else self._resource()
            resource_metrics = [ResourceMetrics(resource, [], resource.schema_url)]
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


#: Meter providers looked at, with their histograms (None: they keep the SDK's histograms).
_PROVIDERS: weakref.WeakKeyDictionary[MeterProvider, PreAggregatedHistograms | None] = (
    weakref.WeakKeyDictionary()
)
_providers_lock = threading.Lock()


def _pre_aggregation(provider: MeterProvider) -> PreAggregatedHistograms | None:
    """Hook the provider's readers once, when the points they would get are the SDK's own."""
    with _providers_lock:
        if provider in _PROVIDERS:
            return _PROVIDERS[provider]
        histograms = _hook_readers(provider)
        _PROVIDERS[provider] = histograms
        return histograms


def _hook_readers(provider: MeterProvider) -> PreAggregatedHistograms | None:
    # Everything read here is the SDK's own state (1.2x-1.4x); anything unexpected means the
    # SDK's histograms, which are always right.
    try:
        from opentelemetry.sdk.metrics._internal import _default_meter_configurator
        from opentelemetry.sdk.metrics._internal.instrument import _Histogram

        config = provider._sdk_config
        readers = list(provider._metric_readers)
        if provider._disabled or config.views or not readers:
            return None
        if (
            getattr(provider, "_meter_configurator", _default_meter_configurator)
            is not _default_meter_configurator
        ):
            return None
        exemplars = _FILTERS.get(type(config.exemplar_filter))
        if exemplars is None:
            return None
        for reader in readers:
            temporality = reader._instrument_class_temporality.get(_Histogram)
            if temporality != AggregationTemporality.CUMULATIVE or not callable(reader._collect):
                return None
        histograms = PreAggregatedHistograms(lambda: config.resource, exemplars)
        for reader in readers:
            collect: Any = reader._collect
            reader._collect = _collect_with(histograms, collect)
    except Exception:
        return None
    return histograms


def _collect_with(histograms: PreAggregatedHistograms, collect: Callable[..., Any]) -> Callable[..., Any]:
    def collect_with_histograms(reader: Any, *args: Any, **kwargs: Any) -> Any:
        return histograms.add_to(collect(reader, *args, **kwargs), reader)

    return collect_with_histograms


def create_histogram(
    meter: metrics.Meter,
    spec: MetricSpec,
    scope: InstrumentationScope,
    meter_provider: metrics.MeterProvider | None = None,
) -> HistogramRecorder:
    """A histogram for ``spec``: aggregated per thread on an SDK meter provider whose readers
    can take it, the SDK's instrument from ``meter`` otherwise.

    Parameters:
      meter(Meter): The instrumentation's meter (for the SDK's instrument).
      spec(MetricSpec): Name, unit, description and bucket boundaries.
      scope(InstrumentationScope): The meter's name, version and schema URL: where the points go.
      meter_provider(MeterProvider): The provider the meter came from; None for the global one.
    """
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    histograms = _pre_aggregation(provider) if isinstance(provider, MeterProvider) else None
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
