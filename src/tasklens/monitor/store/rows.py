"""Store rows from OTLP export requests: what the receiver hands the writer.

Each function reads one decoded ``Export*ServiceRequest`` and returns plain tuples in the column
order of the store's ``INSERT`` statements, plus what was rejected and why. Ids become lowercase
hex, attribute values become JSON, and the task columns of a span (operation, actor, queue,
message id, attempt, error type and message) are lifted out of its attributes and events so that
the dashboard's filters use indexes.

Nothing unstorable reaches the writer: a timestamp or count beyond SQLite's signed 64-bit
INTEGER (OTLP's ``fixed64`` goes to 2**64-1), a number that is not finite, or text that is not
valid Unicode makes its span, point or record rejected here, counted and explained in the
batch's ``rejected`` and ``error`` (the receiver's partial success), so one bad item never
costs another its place in the store.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tasklens import semconv
from tasklens.monitor.store.quantiles import duration_bin

__all__ = [
    "LogBatch",
    "MetricBatch",
    "SpanBatch",
    "log_rows",
    "metric_rows",
    "series_id",
    "span_rows",
]

#: Resource attribute naming the service that emitted the telemetry.
SERVICE_NAME = "service.name"
#: Resource attribute telling apart the processes of one service.
SERVICE_INSTANCE_ID = "service.instance.id"
#: Resource attributes saying where a process runs, kept in ``instances``.
HOST_NAME = "host.name"
PROCESS_PID = "process.pid"
PROCESS_COMMAND = "process.command"
#: The span event the SDK records for an exception, and its attributes.
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"

#: Largest integer a store column holds: SQLite's INTEGER is signed 64-bit.
MAX_INTEGER = 2**63 - 1
#: Smallest one.
MIN_INTEGER = -(2**63)
#: Most retries a span's ``dramatiq.message.retries`` may claim for its attempt to be recorded;
#: beyond it the attempt is unknown rather than a number no store column holds.
MAX_RETRIES = 2**31

_TRACE_ID_BYTES = 16
_SPAN_ID_BYTES = 8
_STATUS_ERROR = Status.STATUS_CODE_ERROR
_NS_PER_MINUTE = 60_000_000_000


@dataclass
class SpanBatch:
    """The rows of one traces request.

    Parameters:
      spans(list[tuple]): Rows of the ``spans`` table.
      runs(list[tuple]): One ``(minute, actor, queue, failed, retries, dead_letters, bin)`` per
        ``process`` span, for the per-minute rollups.
      instances(list[tuple]): Rows of the ``instances`` table, one per process that sent spans.
      run_spans(list[int]): For each run, the index of its span in ``spans``, so that a span
        the store refuses takes its run with it.
      rejected(int): Spans refused (invalid ids, unstorable values).
      error(str): Why spans were refused, empty when none was.
    """

    spans: list[tuple[Any, ...]] = field(default_factory=list)
    runs: list[tuple[Any, ...]] = field(default_factory=list)
    instances: list[tuple[Any, ...]] = field(default_factory=list)
    run_spans: list[int] = field(default_factory=list)
    rejected: int = 0
    error: str = ""


@dataclass
class MetricBatch:
    """The rows of one metrics request.

    Parameters:
      points(list[tuple]): Rows of the ``metric_points`` table.
      instances(list[tuple]): Rows of the ``instances`` table.
      rejected(int): Data points refused.
      error(str): Why, empty when none was.
    """

    points: list[tuple[Any, ...]] = field(default_factory=list)
    instances: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: int = 0
    error: str = ""


@dataclass
class LogBatch:
    """The rows of one logs request.

    Parameters:
      logs(list[tuple]): Rows of the ``logs`` table.
      instances(list[tuple]): Rows of the ``instances`` table.
      rejected(int): Log records refused (invalid ids).
      error(str): Why, empty when none was.
    """

    logs: list[tuple[Any, ...]] = field(default_factory=list)
    instances: list[tuple[Any, ...]] = field(default_factory=list)
    rejected: int = 0
    error: str = ""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Rejections:
    """How many items of a request were refused, for each reason."""

    def __init__(self, noun: str) -> None:
        self.noun = noun
        self.counts: dict[str, int] = {}

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def message(self) -> str:
        return "; ".join(f"{count} {self.noun}(s) {reason}" for reason, count in self.counts.items())


def storable(row: tuple[Any, ...]) -> bool:
    """Whether SQLite can store every value of ``row`` as it is: integers within 64 bits,
    finite floats, text that encodes as UTF-8.

    Parameters:
      row(tuple): One row, in an ``INSERT``'s column order.
    """
    for value in row:
        if isinstance(value, int):
            if not MIN_INTEGER <= value <= MAX_INTEGER:
                return False
        elif isinstance(value, float):
            if not math.isfinite(value):
                return False
        elif isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                return False
    return True


#: Why an item with a value no store column holds is refused.
UNSTORABLE = (
    "with a value out of range (a time or count beyond 2**63-1, a number that is not finite,"
    " or invalid Unicode)"
)


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a JSON-ready Python value (bytes become hex)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "double_value" and not math.isfinite(value.double_value):
        # JSON has no NaN or infinity: kept as the OTLP JSON mapping spells them.
        return _nonfinite_text(value.double_value)
    return getattr(value, kind)


def _nonfinite_text(number: float) -> str:
    """A float JSON cannot hold, as OTLP JSON spells it: ``NaN``, ``Infinity``, ``-Infinity``."""
    if math.isnan(number):
        return "NaN"
    return "Infinity" if number > 0 else "-Infinity"


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP key-values as a dict."""
    return {pair.key: any_value(pair.value) for pair in pairs}


def _resource_identity(resource: Resource) -> tuple[str | None, str | None]:
    service = instance = None
    pair: KeyValue
    for pair in resource.attributes:
        if pair.key == SERVICE_NAME:
            service = str(any_value(pair.value))
        elif pair.key == SERVICE_INSTANCE_ID:
            instance = str(any_value(pair.value))
    return service, instance


def _instance_row(resource: Resource, times: list[int]) -> tuple[Any, ...] | None:
    """The ``instances`` row of a resource that sent items at ``times``; ``None`` without an
    instance id or items."""
    attrs = attributes(resource.attributes)
    service, instance = attrs.get(SERVICE_NAME), attrs.get(SERVICE_INSTANCE_ID)
    times = [t for t in times if 0 < t <= MAX_INTEGER]
    if instance is None or not times:
        return None
    pid = attrs.get(PROCESS_PID)
    return (
        str(service or ""),
        str(instance),
        _optional_str(attrs.get(HOST_NAME)),
        pid if isinstance(pid, int) and 0 <= pid <= MAX_INTEGER else None,
        _optional_str(attrs.get(PROCESS_COMMAND)),
        min(times),
        max(times),
    )


def _valid_id(raw: bytes, size: int) -> bool:
    return len(raw) == size and raw != b"\x00" * size


def _valid_references(span: Span) -> bool:
    """Whether the span's parent id (when it has one) and its links' ids have their lengths."""
    if span.parent_span_id and len(span.parent_span_id) != _SPAN_ID_BYTES:
        return False
    return all(
        _valid_id(link.trace_id, _TRACE_ID_BYTES) and _valid_id(link.span_id, _SPAN_ID_BYTES)
        for link in span.links
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _span_row(span: Span, service: str | None, instance: str | None) -> tuple[tuple[Any, ...], tuple | None]:
    attrs = attributes(span.attributes)
    events = []
    error_type = attrs.get(semconv.ERROR_TYPE)
    error_message = None
    retries = dead_letters = 0
    for event in span.events:
        event_attrs = attributes(event.attributes)
        events.append({"name": event.name, "time": event.time_unix_nano / 1e9, "attributes": event_attrs})
        if event.name == EXCEPTION_EVENT:
            error_type = error_type or event_attrs.get(EXCEPTION_TYPE)
            error_message = event_attrs.get(EXCEPTION_MESSAGE, error_message)
        elif event.name in (semconv.EVENT_RETRY_SCHEDULED, semconv.EVENT_CELERY_RETRY_SCHEDULED):
            retries += 1
        elif event.name == semconv.EVENT_DEAD_LETTERED:
            dead_letters += 1
    links = [{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex()} for link in span.links]
    operation = attrs.get(semconv.MESSAGING_OPERATION_TYPE) or attrs.get(semconv.MESSAGING_OPERATION_NAME)
    # The task column holds the task name of either library: one Runs page lists both.
    actor = attrs.get(semconv.DRAMATIQ_ACTOR_NAME) or attrs.get(semconv.CELERY_TASK_NAME)
    queue = attrs.get(semconv.MESSAGING_DESTINATION_NAME)
    previous = attrs.get(semconv.DRAMATIQ_MESSAGE_RETRIES)
    if previous is None:
        previous = attrs.get(semconv.CELERY_TASK_RETRIES)
    if isinstance(previous, int) and not isinstance(previous, bool):
        attempt = previous + 1 if 0 <= previous <= MAX_RETRIES else None
    else:
        attempt = 1 if operation == semconv.OPERATION_PROCESS else None
    status_code = span.status.code
    start_ns, end_ns = span.start_time_unix_nano, span.end_time_unix_nano
    row = (
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex() or None,
        span.name,
        span.kind,
        service,
        instance,
        start_ns,
        end_ns,
        status_code,
        span.status.message or None,
        _optional_str(operation),
        _optional_str(actor),
        _optional_str(queue),
        _optional_str(attrs.get(semconv.MESSAGING_MESSAGE_ID)),
        attempt,
        _optional_str(error_type),
        _optional_str(error_message),
        _dumps(attrs),
        _dumps(events) if events else None,
        _dumps(links) if links else None,
    )
    if operation != semconv.OPERATION_PROCESS:
        return row, None
    run = (
        start_ns // _NS_PER_MINUTE * 60,
        str(actor or ""),
        str(queue or ""),
        1 if status_code == _STATUS_ERROR else 0,
        retries,
        dead_letters,
        duration_bin(max(end_ns - start_ns, 0) / 1e9),
    )
    return row, run


def span_rows(request: ExportTraceServiceRequest) -> SpanBatch:
    """The rows of every span in ``request``; spans with invalid ids are rejected.

    Parameters:
      request(ExportTraceServiceRequest): A decoded traces request.
    """
    batch = SpanBatch()
    rejections = _Rejections("span")
    for resource_spans in request.resource_spans:
        service, instance = _resource_identity(resource_spans.resource)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if not (
                    _valid_id(span.trace_id, _TRACE_ID_BYTES) and _valid_id(span.span_id, _SPAN_ID_BYTES)
                ):
                    rejections.add("without a valid 16-byte trace id and 8-byte span id")
                    continue
                if not _valid_references(span):
                    rejections.add("with a parent span id or link ids of the wrong length")
                    continue
                if span.start_time_unix_nano > MAX_INTEGER or span.end_time_unix_nano > MAX_INTEGER:
                    rejections.add(UNSTORABLE)
                    continue
                row, run = _span_row(span, service, instance)
                if not storable(row) or (run is not None and not storable(run)):
                    rejections.add(UNSTORABLE)
                    continue
                if run is not None:
                    batch.runs.append(run)
                    batch.run_spans.append(len(batch.spans))
                batch.spans.append(row)
        times = [span.end_time_unix_nano for scope in resource_spans.scope_spans for span in scope.spans]
        known = _instance_row(resource_spans.resource, times)
        if known is not None:
            batch.instances.append(known)
    batch.rejected, batch.error = rejections.total, rejections.message
    return batch


def series_id(name: str, service: str | None, instance: str | None, attributes_json: str) -> int:
    """A metric series' 64-bit id: the same for every point of one process's series.

    Parameters:
      name(str): The metric's name.
      service(str|None): ``service.name`` of the process.
      instance(str|None): ``service.instance.id`` of the process.
      attributes_json(str): The point's attributes, as stored.
    """
    key = f"{name}\x00{service}\x00{instance}\x00{attributes_json}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big", signed=True)


def _point_row(
    metric: Any, kind: str, point: Any, service: str | None, instance: str | None
) -> tuple[Any, ...]:
    attrs = attributes(point.attributes)
    temporality = value = count = total = bounds = bucket_counts = None
    if kind in ("gauge", "sum"):
        value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
        if kind == "sum":
            temporality = metric.sum.aggregation_temporality
            kind = "counter" if metric.sum.is_monotonic else "updowncounter"
    elif kind == "histogram":
        temporality = metric.histogram.aggregation_temporality
        count, total = point.count, point.sum
        bounds = _dumps(list(point.explicit_bounds))
        bucket_counts = _dumps(list(point.bucket_counts))
    else:
        count, total = point.count, point.sum
    attributes_json = _dumps(attrs)
    return (
        point.time_unix_nano,
        point.start_time_unix_nano or None,
        metric.name,
        series_id(metric.name, service, instance, attributes_json),
        kind,
        temporality,
        service,
        instance,
        _optional_str(attrs.get(semconv.DRAMATIQ_ACTOR_NAME) or attrs.get(semconv.CELERY_TASK_NAME)),
        attributes_json,
        value,
        count,
        total,
        bounds,
        bucket_counts,
    )


def metric_rows(request: ExportMetricsServiceRequest) -> MetricBatch:
    """The rows of every data point in ``request``.

    Parameters:
      request(ExportMetricsServiceRequest): A decoded metrics request.
    """
    batch = MetricBatch()
    rejections = _Rejections("data point")
    for resource_metrics in request.resource_metrics:
        service, instance = _resource_identity(resource_metrics.resource)
        times: list[int] = []
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                for point in getattr(metric, kind).data_points:
                    row = _point_row(metric, kind, point, service, instance)
                    if not storable(row) or not _storable_counts(kind, point):
                        rejections.add(UNSTORABLE)
                        continue
                    batch.points.append(row)
                    times.append(point.time_unix_nano)
        known = _instance_row(resource_metrics.resource, times)
        if known is not None:
            batch.instances.append(known)
    batch.rejected, batch.error = rejections.total, rejections.message
    return batch


def _storable_counts(kind: str, point: Any) -> bool:
    """Whether a histogram point's bucket counts and bounds are numbers the dashboard can use."""
    if kind != "histogram":
        return True
    return all(count <= MAX_INTEGER for count in point.bucket_counts) and all(
        math.isfinite(bound) for bound in point.explicit_bounds
    )


def log_rows(request: ExportLogsServiceRequest) -> LogBatch:
    """The rows of every log record in ``request``; records with malformed ids are rejected.

    Parameters:
      request(ExportLogsServiceRequest): A decoded logs request.
    """
    batch = LogBatch()
    rejections = _Rejections("log record")
    for resource_logs in request.resource_logs:
        service, instance = _resource_identity(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                trace_id, span_id = record.trace_id, record.span_id
                if (trace_id and len(trace_id) != _TRACE_ID_BYTES) or (
                    span_id and len(span_id) != _SPAN_ID_BYTES
                ):
                    rejections.add("with a malformed trace or span id")
                    continue
                body = any_value(record.body)
                row = (
                    record.time_unix_nano or record.observed_time_unix_nano,
                    trace_id.hex() or None,
                    span_id.hex() or None,
                    record.severity_number,
                    record.severity_text or None,
                    body if isinstance(body, str) or body is None else _dumps(body),
                    service,
                    instance,
                    _dumps(attributes(record.attributes)),
                )
                if not storable(row):
                    rejections.add(UNSTORABLE)
                    continue
                batch.logs.append(row)
        times = [
            record.time_unix_nano or record.observed_time_unix_nano
            for scope in resource_logs.scope_logs
            for record in scope.log_records
        ]
        known = _instance_row(resource_logs.resource, times)
        if known is not None:
            batch.instances.append(known)
    batch.rejected, batch.error = rejections.total, rejections.message
    return batch
