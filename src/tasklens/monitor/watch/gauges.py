"""The broker-side gauges, as ``GET /metrics`` serves them in the Prometheus exposition format.

Names are the standard OpenTelemetry-to-Prometheus translation of the ``tasklens.semconv``
specs: dots become underscores and the unit becomes a suffix (``s`` -> ``_seconds``; annotations
in braces such as ``{message}`` add nothing), so ``tasklens.queue.depth`` is
``tasklens_queue_depth{messaging_system="dramatiq",messaging_destination_name="default",state="ready"}``.
Dramatiq's and Celery's queues use the same families; ``messaging_system`` tells them apart.
Celery on Redis adds ``tasklens_queue_priority_ready`` (per priority step),
``tasklens_queue_oldest_unacked_age_seconds`` and ``tasklens_queue_visibility_timeout_seconds``.

A count the broker cannot tell (``None``) is left out, never reported as 0. When the broker does
not answer, ``tasklens_broker_up`` is 0 and the queue gauges are absent.

When the monitor reads several brokers, each queue's series carry its own library's
``messaging_system``, ``tasklens_workers`` has one series per library, and ``tasklens_broker_up``
has one series per broker, labelled ``broker`` (its URL without credentials) and
``messaging_system`` (empty until it is known): a broker that does not answer is 0 and its queues
are absent, while the others' are served.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot
from tasklens.monitor.watch.snapshots import ReadResult, SnapshotReader, depths_by_state

__all__ = [
    "BrokerCollector",
    "metrics_registry",
    "prometheus_label",
    "prometheus_name",
]

#: OpenTelemetry units and the suffix they give a Prometheus name. Units in braces are
#: annotations and give none; so does the dimensionless ``1`` of ``tasklens.broker.up``.
UNIT_SUFFIXES: dict[str, str] = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}


def prometheus_label(attribute: str) -> str:
    """An attribute name as a Prometheus label name (``messaging.destination.name`` ->
    ``messaging_destination_name``).

    Parameters:
      attribute(str): The OpenTelemetry attribute name.
    """
    return attribute.replace(".", "_")


def prometheus_name(spec: semconv.MetricSpec) -> str:
    """A metric's Prometheus name (``tasklens.queue.oldest_message.age`` ->
    ``tasklens_queue_oldest_message_age_seconds``).

    Parameters:
      spec(MetricSpec): The metric's name and unit.
    """
    base = spec.name.replace(".", "_")
    suffix = "" if spec.unit.startswith("{") else UNIT_SUFFIXES.get(spec.unit, spec.unit)
    return f"{base}_{suffix}" if suffix and not base.endswith(f"_{suffix}") else base


#: Label names of the queue gauges.
SYSTEM_LABEL = prometheus_label(semconv.MESSAGING_SYSTEM)
QUEUE_LABEL = prometheus_label(semconv.MESSAGING_DESTINATION_NAME)
STATE_LABEL = prometheus_label(semconv.QUEUE_STATE)
PRIORITY_LABEL = prometheus_label(semconv.QUEUE_PRIORITY)
#: Label of ``tasklens_broker_up`` naming the broker, when the monitor reads several.
BROKER_LABEL = "broker"


class BrokerCollector(Collector):
    """Turns the reader's snapshot into gauges at each scrape.

    Parameters:
      reader(SnapshotReader): Where snapshots come from; it bounds and caches broker reads.
    """

    def __init__(self, reader: SnapshotReader) -> None:
        self._reader = reader

    def collect(self) -> Iterator[Metric]:
        result = self._reader.result()
        yield from _broker_gauges(result)
        if result.snapshot is not None:
            yield from _queue_gauges(result.snapshot)

    def describe(self) -> Iterator[Metric]:
        # Registering must not read the broker.
        return iter(())


def metrics_registry(reader: SnapshotReader, *received: Collector) -> CollectorRegistry:
    """A registry holding the broker gauges (no process metrics of the monitor itself), and the
    task metrics received over OTLP.

    Parameters:
      reader(SnapshotReader): Where snapshots come from.
      received(Collector): Collectors of the task metrics the workers export to the monitor.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerCollector(reader))
    for collector in received:
        registry.register(collector)
    return registry


def _gauge(spec: semconv.MetricSpec, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(prometheus_name(spec), spec.description, labels=labels)


def _broker_gauges(result: ReadResult) -> Iterator[Metric]:
    parts = result.snapshot.brokers if result.snapshot is not None else None
    if parts is None:
        up = _gauge(semconv.BROKER_UP)
        up.add_metric([], 1.0 if result.up else 0.0)
    else:
        up = _gauge(semconv.BROKER_UP, [BROKER_LABEL, SYSTEM_LABEL])
        for part in parts:
            up.add_metric([part.broker, part.messaging_system or ""], 1.0 if part.up else 0.0)
    yield up
    duration = _gauge(semconv.BROKER_SCRAPE_DURATION)
    duration.add_metric([], result.duration)
    yield duration


def _queue_gauges(snapshot: BrokerSnapshot) -> Iterator[Metric]:
    depth = _gauge(semconv.QUEUE_DEPTH, [SYSTEM_LABEL, QUEUE_LABEL, STATE_LABEL])
    age = _gauge(semconv.QUEUE_OLDEST_MESSAGE_AGE, [SYSTEM_LABEL, QUEUE_LABEL])
    priority = _gauge(semconv.QUEUE_PRIORITY_READY, [SYSTEM_LABEL, QUEUE_LABEL, PRIORITY_LABEL])
    unacked_age = _gauge(semconv.QUEUE_OLDEST_UNACKED_AGE, [SYSTEM_LABEL, QUEUE_LABEL])
    visibility = _gauge(semconv.QUEUE_VISIBILITY_TIMEOUT, [SYSTEM_LABEL, QUEUE_LABEL])
    for stats in snapshot.queues:
        system = snapshot.system_of(stats)
        for state, count in depths_by_state(stats):
            if count is not None:
                depth.add_metric([system, stats.name, state], float(count))
        if stats.oldest_age is not None:
            age.add_metric([system, stats.name], stats.oldest_age)
        for step, ready in sorted((stats.priorities or {}).items()):
            priority.add_metric([system, stats.name, str(step)], float(ready))
        if stats.oldest_unacked_age is not None:
            unacked_age.add_metric([system, stats.name], stats.oldest_unacked_age)
        if stats.visibility_timeout is not None:
            visibility.add_metric([system, stats.name], stats.visibility_timeout)
    yield depth
    yield age
    # Families only some layouts have are left out when empty, rather than announced bare.
    for family in (priority, unacked_age, visibility):
        if family.samples:
            yield family
    by_system: dict[str, int] = {}
    if snapshot.brokers is None:
        if snapshot.workers is not None:
            by_system[snapshot.messaging_system] = snapshot.workers
    else:
        for part in snapshot.brokers:
            if part.up and part.workers is not None and part.messaging_system is not None:
                by_system[part.messaging_system] = by_system.get(part.messaging_system, 0) + part.workers
    if by_system:
        workers = _gauge(semconv.WORKERS, [SYSTEM_LABEL])
        for name, count in sorted(by_system.items()):
            workers.add_metric([name], float(count))
        yield workers
