"""Limits on what one span, log record or data point may carry, applied to every OTLP export.

A span with a million attributes, or one attribute of 15 MB, is valid OTLP: stored as is, it
makes ``/api/traces`` answer megabytes and the trace page hang. The receiver applies, before
anything is stored or summed, the limits the OpenTelemetry SDK applies by default on the
producing side (128 attributes, events and links), and a length limit on every value:

- attributes beyond ``max_attributes`` per span, event, link, log record, data point, resource
  or scope are dropped, as are attributes whose key is longer than ``max_key_length``;
- strings (and bytes) longer than ``max_value_length`` are cut to it, and arrays and key-value
  lists keep their first ``max_attributes`` items;
- events and links beyond ``max_events`` and ``max_links`` per span are dropped.

What was dropped is added to the item's ``dropped_attributes_count`` (``dropped_events_count``,
``dropped_links_count``), where the protocol has one, and said in the response's partial success.

Example:

  >>> limits = AttributeLimits()
  >>> dropped = limits.apply(request)  # any Export*ServiceRequest, changed in place
  >>> dropped.message(limits)  # empty when nothing was dropped
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "DEFAULT_MAX_ATTRIBUTES",
    "DEFAULT_MAX_KEY_LENGTH",
    "DEFAULT_MAX_VALUE_LENGTH",
    "AttributeLimits",
    "Dropped",
]

#: Attributes (and events, links, array items) kept per item: the SDK's own default limit.
DEFAULT_MAX_ATTRIBUTES = 128
#: Characters kept of a string value (bytes of a bytes value).
DEFAULT_MAX_VALUE_LENGTH = 4096
#: Longest attribute key kept, in characters.
DEFAULT_MAX_KEY_LENGTH = 256


@dataclass
class Dropped:
    """What the limits took out of one request.

    Parameters:
      attributes(int): Attributes dropped (over the count, or with too long a key).
      values(int): Values cut to the length limit.
      events(int): Span events dropped.
      links(int): Span links dropped.
    """

    attributes: int = 0
    values: int = 0
    events: int = 0
    links: int = 0

    def message(self, limits: AttributeLimits | None = None) -> str:
        """The partial-success note, empty when nothing was dropped."""
        limits = limits or AttributeLimits()
        parts = []
        if self.attributes:
            parts.append(
                f"{self.attributes} attribute(s) over the limit of {limits.max_attributes} per item"
                f" (or with a key over {limits.max_key_length} characters) dropped"
            )
        if self.values:
            parts.append(f"{self.values} value(s) cut to {limits.max_value_length} characters")
        if self.events:
            parts.append(f"{self.events} event(s) over the limit of {limits.max_events} per span dropped")
        if self.links:
            parts.append(f"{self.links} link(s) over the limit of {limits.max_links} per span dropped")
        return "; ".join(parts)


@dataclass(frozen=True)
class AttributeLimits:
    """How much one item of an export may carry.

    Parameters:
      max_attributes(int): Attributes per item, and items per array or key-value list value.
      max_value_length(int): Characters per string value (bytes per bytes value).
      max_key_length(int): Characters per attribute key.
      max_events(int): Events per span.
      max_links(int): Links per span.
    """

    max_attributes: int = DEFAULT_MAX_ATTRIBUTES
    max_value_length: int = DEFAULT_MAX_VALUE_LENGTH
    max_key_length: int = DEFAULT_MAX_KEY_LENGTH
    max_events: int = DEFAULT_MAX_ATTRIBUTES
    max_links: int = DEFAULT_MAX_ATTRIBUTES

    def apply(self, request: Any) -> Dropped:
        """Apply the limits to a decoded export request of any signal, in place.

        Parameters:
          request: An ``Export{Trace,Metrics,Logs}ServiceRequest``.
        """
        if isinstance(request, ExportTraceServiceRequest):
            return self.apply_to_spans(request)
        if isinstance(request, ExportMetricsServiceRequest):
            return self.apply_to_metrics(request)
        assert isinstance(request, ExportLogsServiceRequest)
        return self.apply_to_logs(request)

    def apply_to_spans(self, request: ExportTraceServiceRequest) -> Dropped:
        """Apply the limits to every span of a traces request, in place."""
        dropped = Dropped()
        for resource_spans in request.resource_spans:
            self._resource(resource_spans, dropped)
            for scope_spans in resource_spans.scope_spans:
                self._item(scope_spans.scope, dropped)
                for span in scope_spans.spans:
                    self._item(span, dropped)
                    if len(span.events) > self.max_events:
                        extra = len(span.events) - self.max_events
                        del span.events[self.max_events :]
                        span.dropped_events_count += extra
                        dropped.events += extra
                    if len(span.links) > self.max_links:
                        extra = len(span.links) - self.max_links
                        del span.links[self.max_links :]
                        span.dropped_links_count += extra
                        dropped.links += extra
                    for event in span.events:
                        self._item(event, dropped)
                    for link in span.links:
                        self._item(link, dropped)
        return dropped

    def apply_to_metrics(self, request: ExportMetricsServiceRequest) -> Dropped:
        """Apply the limits to every data point of a metrics request, in place."""
        dropped = Dropped()
        for resource_metrics in request.resource_metrics:
            self._resource(resource_metrics, dropped)
            for scope_metrics in resource_metrics.scope_metrics:
                self._item(scope_metrics.scope, dropped)
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is None:
                        continue
                    for point in getattr(metric, kind).data_points:
                        # Data points have no dropped count of their own: the response says it.
                        self._attributes(point.attributes, dropped)
                        for exemplar in getattr(point, "exemplars", ()):
                            self._attributes(exemplar.filtered_attributes, dropped)
        return dropped

    def apply_to_logs(self, request: ExportLogsServiceRequest) -> Dropped:
        """Apply the limits to every log record of a logs request, in place."""
        dropped = Dropped()
        for resource_logs in request.resource_logs:
            self._resource(resource_logs, dropped)
            for scope_logs in resource_logs.scope_logs:
                self._item(scope_logs.scope, dropped)
                for record in scope_logs.log_records:
                    self._item(record, dropped)
                    self._value(record.body, dropped)
        return dropped

    def _resource(self, holder: Any, dropped: Dropped) -> None:
        if holder.HasField("resource"):
            self._item(holder.resource, dropped)

    def _item(self, item: Any, dropped: Dropped) -> None:
        """An item with ``attributes`` and ``dropped_attributes_count``."""
        item.dropped_attributes_count += self._attributes(item.attributes, dropped)

    def _attributes(self, pairs: Any, dropped: Dropped) -> int:
        """Limit a list of key-values in place; how many were dropped."""
        removed = 0
        long_keys = [index for index, pair in enumerate(pairs) if len(pair.key) > self.max_key_length]
        for index in reversed(long_keys):
            del pairs[index]
            removed += 1
        if len(pairs) > self.max_attributes:
            removed += len(pairs) - self.max_attributes
            del pairs[self.max_attributes :]
        dropped.attributes += removed
        for pair in pairs:
            self._value(pair.value, dropped)
        return removed

    def _value(self, value: AnyValue, dropped: Dropped) -> None:
        kind = value.WhichOneof("value")
        if kind == "string_value":
            if len(value.string_value) > self.max_value_length:
                value.string_value = value.string_value[: self.max_value_length]
                dropped.values += 1
        elif kind == "bytes_value":
            if len(value.bytes_value) > self.max_value_length:
                value.bytes_value = value.bytes_value[: self.max_value_length]
                dropped.values += 1
        elif kind == "array_value":
            items = value.array_value.values
            if len(items) > self.max_attributes:
                dropped.attributes += len(items) - self.max_attributes
                del items[self.max_attributes :]
            for item in items:
                self._value(item, dropped)
        elif kind == "kvlist_value":
            self._attributes(value.kvlist_value.values, dropped)
