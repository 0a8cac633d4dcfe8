"""The task metrics workers export over OTLP, summed across processes and served on ``/metrics``.

Each worker process exports its own series (its own ``service.instance.id``). Prometheus
scraping the monitor wants one series per actor and queue, so ``ReceivedMetrics`` keeps the
latest state of every process and adds them up at each scrape: counters are summed (a process
that restarted keeps its earlier total, so sums never go down), histograms with the same bucket
boundaries are merged bucket by bucket, and up-down counters are summed over the processes heard
from recently. Names follow the OpenTelemetry-to-Prometheus translation of ``/metrics``:
``messaging.process.duration`` (``s``) becomes ``messaging_process_duration_seconds_bucket`` and
so on, with each point's attributes as labels plus ``service_name``.

The workers' process health metrics (CPU time, memory, threads, garbage collection) are served
per process instead, labelled ``service_name`` and ``service_instance_id`` as a Collector's
``prometheus`` exporter labels them with ``resource_to_telemetry_conversion``; a process not heard
from for ``STALE_AFTER`` seconds is dropped. ``process.cpu.utilization`` is not served: a Collector
names it ``process_cpu_utilization_ratio`` (gauges of unit ``1`` get ``_ratio``), a rule the
broker gauges do not follow, and a rate of ``process_cpu_time_seconds_total`` tells the same.

What workers send must never break a scrape, nor grow it without bound:

- Attribute keys become valid label names by the Prometheus translation's rules: characters
  outside ``[a-zA-Z0-9_]`` become ``_``, a leading digit gets ``key_``, names Prometheus reserves
  (``__name__`` and every ``__``-prefixed one) and the labels the exposition itself writes
  (``le``, ``quantile``, ``service_name``) get ``key``/``key_`` in front, and empty keys are
  dropped. Keys that end up the same are merged, their values joined with ``;``.
- At most ``MAX_SERIES_PER_METRIC`` series per metric and ``MAX_SERIES`` in all: points of a new
  series beyond them are dropped, counted in ``tasklens_receiver_dropped_series_total`` and
  logged once per metric.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tasklens import semconv
from tasklens.monitor.store.rows import SERVICE_INSTANCE_ID, SERVICE_NAME, attributes
from tasklens.monitor.watch.gauges import prometheus_name
from tasklens.telemetry.process_metrics import PROCESS_METRICS

__all__ = [
    "MAX_SERIES",
    "MAX_SERIES_PER_METRIC",
    "PROCESS_METRIC_NAMES",
    "TASK_METRICS",
    "ReceivedMetrics",
    "label_name",
]

logger = logging.getLogger(__name__)

#: The worker- and producer-side metrics served again on ``/metrics``.
TASK_METRICS: dict[str, semconv.MetricSpec] = {
    spec.name: spec
    for spec in (
        semconv.SENT_MESSAGES,
        semconv.CLIENT_OPERATION_DURATION,
        semconv.PROCESS_DURATION,
        semconv.CONSUMED_MESSAGES,
        semconv.MESSAGE_RETRIES,
        semconv.MESSAGE_DEAD_LETTERED,
        semconv.MESSAGES_IN_FLIGHT,
        semconv.MESSAGE_QUEUE_WAIT,
        semconv.CELERY_TASK_RETRIES_METRIC,
        semconv.CELERY_TASK_FAILURES,
        semconv.CELERY_TASKS_IN_FLIGHT,
        semconv.CELERY_TASK_QUEUE_WAIT,
    )
}
#: The process health metrics served again on ``/metrics``, one series per process.
PROCESS_METRIC_NAMES: frozenset[str] = frozenset(PROCESS_METRICS) - {"process.cpu.utilization"}
#: An up-down counter of a process not heard from for this long no longer counts, in seconds
#: (its process is gone; its messages are no longer in flight).
STALE_AFTER = 300.0
#: Label holding the ``service.name`` of the processes summed into a series.
SERVICE_LABEL = "service_name"
#: Label telling apart the processes of a service, on the process health metrics.
INSTANCE_LABEL = "service_instance_id"
#: Series one metric may have on ``/metrics``; points of further series are dropped.
MAX_SERIES_PER_METRIC = 1000
#: Series all received metrics may have together.
MAX_SERIES = 10_000
#: Labels the exposition writes itself, which an attribute may not take.
RESERVED_LABELS = frozenset({SERVICE_LABEL, INSTANCE_LABEL, "le", "quantile"})

_INVALID_LABEL_CHARACTERS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(key: str) -> str | None:
    """A received attribute key as a valid, unreserved Prometheus label name; ``None`` for an
    empty key (``http.route`` -> ``http_route``, ``__name__`` -> ``key__name__``, ``9x`` -> ``key_9x``).

    Parameters:
      key(str): The attribute key, as the worker sent it.
    """
    if not key:
        return None
    name = _INVALID_LABEL_CHARACTERS.sub("_", key)
    if name[0].isdigit() or name in RESERVED_LABELS:
        return f"key_{name}"
    if name.startswith("__"):
        return f"key{name}"
    return name


_DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA

Labels = tuple[tuple[str, str], ...]


@dataclass
class _ProcessState:
    """One process's latest state of one series, and what it had before it restarted."""

    start_ns: int = 0
    value: float = 0.0
    carried: float = 0.0
    counts: list[int] = field(default_factory=list)
    carried_counts: list[int] = field(default_factory=list)
    sum: float = 0.0
    carried_sum: float = 0.0
    seen: float = 0.0


@dataclass
class _Family:
    spec: semconv.MetricSpec
    bounds: list[float] | None = None
    #: One series per process (``service_instance_id`` label) rather than summed over them.
    per_process: bool = False
    series: dict[Labels, dict[str, _ProcessState]] = field(default_factory=dict)


def _add(a: list[int], b: list[int]) -> list[int]:
    if not a:
        return list(b)
    return [x + y for x, y in zip(a, b, strict=True)]


class ReceivedMetrics(Collector):
    """Task metrics received from every process, summed per series at each scrape.

    Parameters:
      clock(Callable[[], float]): Monotonic clock for staleness, in seconds.
      max_series_per_metric(int): Series one metric may have.
      max_series(int): Series all of them may have together.

    Example:

      >>> received = ReceivedMetrics()
      >>> received.update(request)  # an ExportMetricsServiceRequest
      >>> registry.register(received)
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_series_per_metric: int = MAX_SERIES_PER_METRIC,
        max_series: int = MAX_SERIES,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._max_series_per_metric = max_series_per_metric
        self._max_series = max_series
        self._series = 0
        self._dropped = 0
        self._warned: set[str] = set()

    def update(self, request: ExportMetricsServiceRequest) -> None:
        """Record the task metrics of a decoded metrics request.

        Parameters:
          request(ExportMetricsServiceRequest): What one process exported.
        """
        now = self._clock()
        with self._lock:
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                service = str(resource.get(SERVICE_NAME, ""))
                instance = str(resource.get(SERVICE_INSTANCE_ID, ""))
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        spec = TASK_METRICS.get(metric.name)
                        if spec is not None:
                            self._update_metric(spec, metric, service, instance, now)
                        elif metric.name in PROCESS_METRIC_NAMES:
                            spec = _spec_of(metric)
                            if spec is not None:
                                self._update_metric(spec, metric, service, instance, now, per_process=True)

    def _update_metric(
        self,
        spec: semconv.MetricSpec,
        metric: Any,
        service: str,
        instance: str,
        now: float,
        *,
        per_process: bool = False,
    ) -> None:
        kind = metric.WhichOneof("data")
        family = self._families.setdefault(spec.name, _Family(spec, per_process=per_process))
        if kind == "histogram" and spec.instrument == "histogram":
            temporality = metric.histogram.aggregation_temporality
            for point in metric.histogram.data_points:
                self._update_histogram(family, point, temporality, service, instance, now)
        elif kind in ("sum", "gauge") and spec.instrument != "histogram":
            temporality = metric.sum.aggregation_temporality if kind == "sum" else 0
            for point in getattr(metric, kind).data_points:
                self._update_number(family, point, temporality, service, instance, now)

    def _state(self, family: _Family, point: Any, service: str, instance: str) -> _ProcessState | None:
        """The process's state of the point's series; ``None`` when it is a new series beyond
        the limits (the point is dropped)."""
        merged: dict[str, list[tuple[str, str]]] = {}
        for key, value in attributes(point.attributes).items():
            name = label_name(key)
            if name is not None:
                merged.setdefault(name, []).append((key, str(value)))
        labels = tuple(
            sorted(
                [(name, ";".join(value for _, value in sorted(values))) for name, values in merged.items()]
                + [(SERVICE_LABEL, service)]
                + ([(INSTANCE_LABEL, instance)] if family.per_process else [])
            )
        )
        processes = family.series.get(labels)
        if processes is None:
            if len(family.series) >= self._max_series_per_metric or self._series >= self._max_series:
                self._drop(family.spec.name)
                return None
            processes = family.series[labels] = {}
            self._series += 1
        return processes.setdefault(instance, _ProcessState())

    def _drop(self, metric: str) -> None:
        self._dropped += 1
        if metric not in self._warned:
            self._warned.add(metric)
            logger.warning(
                "Dropping new series of %s: /metrics holds its limit of %d series per metric, %d in all"
                " (see %s)",
                metric,
                self._max_series_per_metric,
                self._max_series,
                prometheus_name(semconv.RECEIVER_DROPPED_SERIES),
            )

    def _update_number(
        self, family: _Family, point: Any, temporality: int, service: str, instance: str, now: float
    ) -> None:
        state = self._state(family, point, service, instance)
        if state is None:
            return
        value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
        if temporality == _DELTA:
            state.value += value
        else:
            if (
                family.spec.instrument == "counter"
                and state.seen
                and point.start_time_unix_nano != state.start_ns
            ):
                state.carried += state.value
            state.value = value
        state.start_ns = point.start_time_unix_nano
        state.seen = now

    def _update_histogram(
        self, family: _Family, point: Any, temporality: int, service: str, instance: str, now: float
    ) -> None:
        bounds = list(point.explicit_bounds)
        counts = list(point.bucket_counts)
        if family.bounds is None:
            family.bounds = bounds
        if bounds != family.bounds or len(counts) != len(bounds) + 1:
            logger.debug("Ignoring a %s point with other bucket boundaries", family.spec.name)
            return
        state = self._state(family, point, service, instance)
        if state is None:
            return
        if temporality == _DELTA:
            state.counts = _add(state.counts, counts)
            state.sum += point.sum
        else:
            if state.seen and point.start_time_unix_nano != state.start_ns:
                state.carried_counts = _add(state.carried_counts, state.counts)
                state.carried_sum += state.sum
            state.counts, state.sum = counts, point.sum
        state.start_ns = point.start_time_unix_nano
        state.seen = now

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        with self._lock:
            for family in self._families.values():
                metric = self._collect_family(family, now)
                if metric is not None:
                    yield metric
            dropped = self._dropped
        spec = semconv.RECEIVER_DROPPED_SERIES
        counter = CounterMetricFamily(prometheus_name(spec), spec.description)
        counter.add_metric([], dropped)
        yield counter

    def _collect_family(self, family: _Family, now: float) -> Metric | None:
        spec = family.spec
        if family.per_process:
            self._forget_stale(family, now)
        name = prometheus_name(spec)
        label_names = sorted({key for labels in family.series for key, _ in labels})
        metric: Any
        if spec.instrument == "histogram":
            metric = HistogramMetricFamily(name, spec.description, labels=label_names, unit="")
        elif spec.instrument == "counter":
            metric = CounterMetricFamily(name, spec.description, labels=label_names)
        else:
            metric = GaugeMetricFamily(name, spec.description, labels=label_names)
        for labels, processes in family.series.items():
            values = [dict(labels).get(key, "") for key in label_names]
            states = list(processes.values())
            if spec.instrument == "histogram":
                self._add_histogram(metric, values, family.bounds or [], states)
            elif spec.instrument == "counter":
                metric.add_metric(values, sum(s.carried + s.value for s in states))
            else:
                live = [s.value for s in states if now - s.seen <= STALE_AFTER]
                if live:
                    metric.add_metric(values, sum(live))
        return metric

    @staticmethod
    def _forget_stale(family: _Family, now: float) -> None:
        # Each worker process has its own series; a restarted process comes back as a new one.
        for labels, processes in list(family.series.items()):
            if all(now - state.seen > STALE_AFTER for state in processes.values()):
                del family.series[labels]

    @staticmethod
    def _add_histogram(
        metric: HistogramMetricFamily, values: list[str], bounds: list[float], states: list[_ProcessState]
    ) -> None:
        counts: list[int] = [0] * (len(bounds) + 1)
        total = 0.0
        for state in states:
            for part in (state.counts, state.carried_counts):
                if part:
                    counts = _add(counts, part)
            total += state.sum + state.carried_sum
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip([*map(_format_bound, bounds), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        metric.add_metric(values, buckets, total)


def _spec_of(metric: Any) -> semconv.MetricSpec | None:
    """The spec of a metric named elsewhere (the process health metrics), from what it says of
    itself: a monotonic sum is a counter, another sum an up-down counter."""
    kind = metric.WhichOneof("data")
    instrument: semconv.Instrument
    if kind == "sum":
        instrument = "counter" if metric.sum.is_monotonic else "updowncounter"
    elif kind in ("gauge", "histogram"):
        instrument = kind
    else:
        return None
    return semconv.MetricSpec(metric.name, instrument, metric.unit, metric.description)


def _format_bound(bound: float) -> str:
    return repr(float(bound))
