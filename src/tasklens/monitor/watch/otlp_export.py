"""The broker-side gauges over OTLP, for stacks that collect with an OpenTelemetry Collector.

Enabled when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``) is set
and ``OTEL_SDK_DISABLED`` is not true. The exporter is OTLP over HTTP/protobuf and honours the
other ``OTEL_EXPORTER_OTLP_*`` variables; ``OTEL_METRIC_EXPORT_INTERVAL`` sets how often it
exports (milliseconds). The gauges are the ones ``/metrics`` serves, under their OpenTelemetry
names (``tasklens.queue.depth`` with ``messaging.system``, ``messaging.destination.name`` and
``state``, ...), read from
the same cached snapshot: exporting costs no extra broker read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from tasklens import semconv
from tasklens.brokers.base import QueueStats
from tasklens.monitor.watch.snapshots import SnapshotReader, depths_by_state

__all__ = ["SERVICE_NAME_DEFAULT", "otlp_export_enabled", "register_gauges", "start_otlp_export"]

logger = logging.getLogger(__name__)

#: ``service.name`` of the monitor's metrics unless ``OTEL_SERVICE_NAME`` says otherwise.
SERVICE_NAME_DEFAULT = "tasklens-monitor"
#: The instrumentation scope the gauges are reported under.
METER_NAME = "tasklens.monitor"
#: Environment variables any of which turns the export on.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


def otlp_export_enabled() -> bool:
    """Whether the environment asks for OTLP export."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def start_otlp_export(
    reader: SnapshotReader, *, metric_reader: MetricReader | None = None
) -> MeterProvider | None:
    """Start exporting the gauges; return the provider (shut it down to stop), or ``None``.

    Parameters:
      reader(SnapshotReader): Where the gauges' values come from.
      metric_reader(MetricReader|None): Collects the gauges; by default a periodic OTLP/HTTP
        exporter, created only when ``otlp_export_enabled()``.
    """
    if metric_reader is None:
        if not otlp_export_enabled():
            return None
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: SERVICE_NAME_DEFAULT}
    provider = MeterProvider(metric_readers=[metric_reader], resource=Resource.create(attributes))
    register_gauges(provider, reader)
    logger.info("Exporting broker gauges over OTLP.")
    return provider


def register_gauges(provider: MeterProvider, reader: SnapshotReader) -> None:
    """Create the observable gauges of the broker-side metrics on ``provider``.

    Parameters:
      provider(MeterProvider): The provider whose readers collect the gauges.
      reader(SnapshotReader): Where their values come from.
    """
    meter = provider.get_meter(METER_NAME)
    gauges: list[tuple[semconv.MetricSpec, Callable[[SnapshotReader], Iterable[Observation]]]] = [
        (semconv.QUEUE_DEPTH, _depth_observations),
        (semconv.QUEUE_OLDEST_MESSAGE_AGE, _queue_values(lambda stats: stats.oldest_age)),
        (semconv.QUEUE_PRIORITY_READY, _priority_observations),
        (semconv.QUEUE_OLDEST_UNACKED_AGE, _queue_values(lambda stats: stats.oldest_unacked_age)),
        (semconv.QUEUE_VISIBILITY_TIMEOUT, _queue_values(lambda stats: stats.visibility_timeout)),
        (semconv.WORKERS, _worker_observations),
        (semconv.BROKER_UP, _up_observations),
        (semconv.BROKER_SCRAPE_DURATION, _duration_observations),
    ]
    for spec, observe in gauges:
        meter.create_observable_gauge(
            spec.name,
            callbacks=[_callback(observe, reader)],
            unit=spec.unit,
            description=spec.description,
        )


def _callback(
    observe: Callable[[SnapshotReader], Iterable[Observation]], reader: SnapshotReader
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return list(observe(reader))

    return callback


def _queue_attributes(system: str, queue: str) -> dict[str, str]:
    return {semconv.MESSAGING_SYSTEM: system, semconv.MESSAGING_DESTINATION_NAME: queue}


def _queue_values(
    value_of: Callable[[QueueStats], float | None],
) -> Callable[[SnapshotReader], Iterable[Observation]]:
    """Observes one value per queue, each queue where it is known (unknown is no point, not 0)."""

    def observe(reader: SnapshotReader) -> Iterable[Observation]:
        snapshot = reader.result().snapshot
        if snapshot is None:
            return
        for stats in snapshot.queues:
            value = value_of(stats)
            if value is not None:
                yield Observation(value, _queue_attributes(snapshot.system_of(stats), stats.name))

    return observe


def _depth_observations(reader: SnapshotReader) -> Iterable[Observation]:
    snapshot = reader.result().snapshot
    if snapshot is None:
        return
    for stats in snapshot.queues:
        for state, count in depths_by_state(stats):
            if count is not None:
                yield Observation(
                    count,
                    {**_queue_attributes(snapshot.system_of(stats), stats.name), semconv.QUEUE_STATE: state},
                )


def _priority_observations(reader: SnapshotReader) -> Iterable[Observation]:
    snapshot = reader.result().snapshot
    if snapshot is None:
        return
    for stats in snapshot.queues:
        for step, ready in sorted((stats.priorities or {}).items()):
            attributes = {
                **_queue_attributes(snapshot.system_of(stats), stats.name),
                semconv.QUEUE_PRIORITY: str(step),
            }
            yield Observation(ready, attributes)


def _worker_observations(reader: SnapshotReader) -> Iterable[Observation]:
    snapshot = reader.result().snapshot
    if snapshot is None:
        return
    if snapshot.brokers is None:
        if snapshot.workers is not None:
            yield Observation(snapshot.workers, {semconv.MESSAGING_SYSTEM: snapshot.messaging_system})
        return
    by_system: dict[str, int] = {}
    for part in snapshot.brokers:  # several brokers: one series per library
        if part.up and part.workers is not None and part.messaging_system is not None:
            by_system[part.messaging_system] = by_system.get(part.messaging_system, 0) + part.workers
    for system, workers in sorted(by_system.items()):
        yield Observation(workers, {semconv.MESSAGING_SYSTEM: system})


def _up_observations(reader: SnapshotReader) -> Iterable[Observation]:
    yield Observation(1 if reader.result().up else 0)


def _duration_observations(reader: SnapshotReader) -> Iterable[Observation]:
    yield Observation(reader.result().duration)
