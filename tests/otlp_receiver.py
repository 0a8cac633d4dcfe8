"""A real OTLP/HTTP receiver for tests: an HTTP server on a free local port.

It accepts ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` with protobuf bodies (gzip or
deflate encoded too), decodes them with opentelemetry-proto and keeps what it received as flat
records: :class:`ReceivedSpan`, :class:`ReceivedMetricPoint`, :class:`ReceivedLog`. Point an
exporter at :attr:`OtlpReceiver.endpoint` (``OTEL_EXPORTER_OTLP_ENDPOINT``)::

    with OtlpReceiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        ...
        assert receiver.wait_for(lambda r: len(r.spans()) == 10, timeout=10)
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

__all__ = ["OtlpReceiver", "ReceivedLog", "ReceivedMetricPoint", "ReceivedSpan"]

#: Span kinds as OTLP numbers them.
SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status_code: int
    events: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReceivedMetricPoint:
    name: str
    kind: str  # sum | gauge | histogram | exponential_histogram | summary
    value: float  # the value, or the count of a histogram point
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


@dataclass(frozen=True)
class ReceivedLog:
    body: Any
    severity_text: str
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class _Store:
    spans: list[ReceivedSpan] = field(default_factory=list)
    metric_points: list[ReceivedMetricPoint] = field(default_factory=list)
    logs: list[ReceivedLog] = field(default_factory=list)
    rejected: int = 0
    #: (path, client port) of each request, in arrival order.
    requests: list[tuple[str, int]] = field(default_factory=list)


def any_value(value: AnyValue) -> Any:
    """The Python value of an OTLP ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    """A dict from repeated OTLP ``KeyValue``."""
    result: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        result[pair.key] = any_value(pair.value)
    return result


def _spans(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    received = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                received.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        attributes=attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status_code=span.status.code,
                        events=tuple(event.name for event in span.events),
                        links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                    )
                )
    return received


def _metric_points(request: ExportMetricsServiceRequest) -> list[ReceivedMetricPoint]:
    received = []
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                for point in getattr(metric, kind).data_points:
                    if kind in ("sum", "gauge"):
                        value = float(getattr(point, point.WhichOneof("value") or "as_double"))
                    else:
                        value = float(point.count)
                    received.append(
                        ReceivedMetricPoint(
                            name=metric.name,
                            kind=kind,
                            value=value,
                            attributes=attributes(point.attributes),
                            resource=resource,
                            scope=scope_metrics.scope.name,
                        )
                    )
    return received


def _logs(request: ExportLogsServiceRequest) -> list[ReceivedLog]:
    received = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                received.append(
                    ReceivedLog(
                        body=any_value(record.body),
                        severity_text=record.severity_text,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        attributes=attributes(record.attributes),
                        resource=resource,
                    )
                )
    return received


_ROUTES: dict[str, tuple[Any, Any, Callable[[Any], list[Any]], str]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse, _spans, "spans"),
    "/v1/metrics": (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
        _metric_points,
        "metric_points",
    ),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse, _logs, "logs"),
}


class OtlpReceiver:
    """An OTLP/HTTP server on ``host`` and a free port, keeping everything it receives.

    Parameters:
      host(str): the address to bind.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._store = _Store()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL, for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def spans(self) -> list[ReceivedSpan]:
        with self._changed:
            return list(self._store.spans)

    def metric_points(self) -> list[ReceivedMetricPoint]:
        with self._changed:
            return list(self._store.metric_points)

    def logs(self) -> list[ReceivedLog]:
        with self._changed:
            return list(self._store.logs)

    def requests(self) -> list[tuple[str, int]]:
        """The path and client port of each request: one port per connection the client opened."""
        with self._changed:
            return list(self._store.requests)

    @property
    def rejected(self) -> int:
        """How many requests could not be decoded."""
        with self._changed:
            return self._store.rejected

    def wait_for(self, condition: Callable[[OtlpReceiver], bool], timeout: float) -> bool:
        """Wait until ``condition(self)`` holds, for at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        # The condition's lock is reentrant: the condition may read through the public methods.
        with self._changed:
            while True:
                if condition(self):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))

    def _add(self, kind: str, records: list[Any]) -> None:
        with self._changed:
            getattr(self._store, kind).extend(records)
            self._changed.notify_all()

    def _record_request(self, path: str, port: int) -> None:
        with self._changed:
            self._store.requests.append((path, port))

    def _reject(self) -> None:
        with self._changed:
            self._store.rejected += 1
            self._changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._record_request(self.path, int(self.client_address[1]))
                route = _ROUTES.get(self.path.rstrip("/"))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if route is None:
                    self._reply(404, b"")
                    return
                request_type, response_type, flatten, kind = route
                try:
                    request = request_type.FromString(_decompress(body, self.headers.get("Content-Encoding")))
                except (DecodeError, OSError, zlib.error):
                    receiver._reject()
                    self._reply(400, b"")
                    return
                receiver._add(kind, flatten(request))
                self._reply(200, response_type().SerializeToString())

            def _reply(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body
