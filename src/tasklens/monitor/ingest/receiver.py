"""The monitor's OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs``.

Workers point ``OTEL_EXPORTER_OTLP_ENDPOINT`` at the monitor and export as they would to an
OpenTelemetry Collector. Per the OTLP/HTTP specification:

- Bodies are binary protobuf (``application/x-protobuf``) or the OTLP JSON mapping
  (``application/json``: hex trace and span ids, enums as integers, camelCase field names),
  optionally ``Content-Encoding: gzip``. Responses use the request's content type.
- A body over ``max_body`` bytes, or one that inflates beyond ``max_decompressed`` bytes (a gzip
  bomb), is refused with 413; a malformed or truncated one with 400; another content type or
  encoding with 415. Errors carry a ``google.rpc.Status``. A refused request changes nothing.
- All requests together hold at most ``memory_budget`` bytes: each one reserves its body as it
  is read and inflated, then what decoding it will cost (``DECODE_COST`` times the body), and
  gives it all back once answered. A request that does not fit now is answered 503 with
  ``Retry-After``; one that could never fit, 413. So many gzip bombs at once cost no more memory
  than one budget.
- Success is 200 with an ``Export*ServiceResponse``, whose ``partial_success`` counts the items
  refused (spans with invalid ids, for example) and says why. It is answered only once what was
  accepted is committed to the store: an acknowledged export survives the monitor being killed.
- When the store is behind (its queue is full, or the commit takes longer than
  ``commit_timeout``), 503 with ``Retry-After``: the SDK's exporters retry on 503, so nothing
  is lost. A batch whose commit was not waited for may, rarely, be stored twice.

Before anything else, the attribute limits of ``AttributeLimits`` are applied to what was
decoded (too many attributes, too long values); what they dropped is said in the partial success.

What is accepted goes to the store (when there is one), task metrics to ``ReceivedMetrics``
(for ``/metrics``), and the raw payload to the upstream endpoint (when forwarding).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_service
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_service
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_service
from starlette.concurrency import run_in_threadpool

from tasklens.monitor.ingest.attribute_limits import AttributeLimits, Dropped
from tasklens.monitor.ingest.forwarder import OtlpForwarder
from tasklens.monitor.ingest.received_metrics import ReceivedMetrics
from tasklens.monitor.store import TelemetryStore
from tasklens.monitor.store.rows import log_rows, metric_rows, span_rows
from tasklens.monitor.store.writer import StoreBusy

__all__ = [
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_DECOMPRESSED",
    "JSON",
    "PROTOBUF",
    "OtlpReceiver",
    "ReceiverLimits",
]

logger = logging.getLogger(__name__)

#: Content type of binary protobuf bodies.
PROTOBUF = "application/x-protobuf"
#: Content type of OTLP JSON bodies.
JSON = "application/json"
#: Largest request body accepted, as sent (compressed or not), in bytes.
DEFAULT_MAX_BODY = 16 * 1024 * 1024
#: Largest body accepted once decompressed, in bytes: as large as one accepted as sent.
DEFAULT_MAX_DECOMPRESSED = 16 * 1024 * 1024
#: Bytes of memory all requests being received may hold together.
DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024
#: Memory a decompressed body costs once decoded and turned into store rows, in multiples of
#: its size (measured: 5 MiB of protobuf spans take 15 MiB decoded and 70 MiB as rows; JSON
#: costs about twice as much).
DECODE_COST = {"application/x-protobuf": 16, "application/json": 32}
#: How long an exporter is asked to wait before retrying when the store is behind, in seconds.
RETRY_AFTER = 5
#: Longest an export waits for its rows to be committed before it is answered 503, in seconds;
#: below the SDK exporters' default timeout of 10 s, so that they see the 503 and retry.
DEFAULT_COMMIT_TIMEOUT = 5.0
#: Bytes inflated at a time, so a gzip bomb is stopped early instead of filling memory.
_INFLATE_CHUNK = 1024 * 1024
#: Deepest nesting of objects and arrays an OTLP JSON body may have. A request with attribute
#: values nested 20 deep is about 50 deep; protobuf itself refuses messages over 100.
MAX_JSON_DEPTH = 100
#: JSON fields holding ids: hex in OTLP JSON, base64 in protobuf's JSON mapping.
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


class PayloadError(Exception):
    """A request the receiver refuses, with its HTTP status and the reason given back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ReceiverLimits:
    """How large a request may be, how much memory all of them may hold, how long one may wait
    for the store.

    Parameters:
      max_body(int): Largest body as sent, in bytes.
      max_decompressed(int): Largest body once decompressed, in bytes.
      memory_budget(int): Bytes all requests being received may hold together.
      commit_timeout(float): Longest an export waits for its commit, in seconds.
    """

    max_body: int = DEFAULT_MAX_BODY
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    commit_timeout: float = DEFAULT_COMMIT_TIMEOUT


class MemoryBudget:
    """Bytes that the requests being received hold, shared by all of them.

    Parameters:
      total(int): Most bytes they may hold together.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Bytes held now."""
        return self._used

    def take(self, size: int) -> bool:
        """Hold ``size`` more bytes if they fit; whether they did."""
        with self._lock:
            if self._used + size > self.total:
                return False
            self._used += size
            return True

    def give_back(self, size: int) -> None:
        """Release ``size`` bytes taken before."""
        with self._lock:
            self._used -= size


class _Hold:
    """What one request holds of the budget, given back all at once when it is answered."""

    def __init__(self, budget: MemoryBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, size: int) -> None:
        if self.held + size > self.budget.total:
            raise PayloadError(
                413,
                f"the request needs more than the receiver's {self.budget.total}-byte memory budget;"
                " send smaller batches",
            )
        if not self.budget.take(size):
            raise PayloadError(503, "the receiver holds as much as it may; retry later")
        self.held += size

    def release(self) -> None:
        self.budget.give_back(self.held)
        self.held = 0


@dataclass(frozen=True)
class _Signal:
    path: str
    request_type: type[Message]
    response_type: type[Message]
    partial_field: str


_TRACES = _Signal(
    "/v1/traces",
    trace_service.ExportTraceServiceRequest,
    trace_service.ExportTraceServiceResponse,
    "rejected_spans",
)
_METRICS = _Signal(
    "/v1/metrics",
    metrics_service.ExportMetricsServiceRequest,
    metrics_service.ExportMetricsServiceResponse,
    "rejected_data_points",
)
_LOGS = _Signal(
    "/v1/logs",
    logs_service.ExportLogsServiceRequest,
    logs_service.ExportLogsServiceResponse,
    "rejected_log_records",
)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def inflate(body: bytes, limit: int, reserve: Callable[[int], None] | None = None) -> bytes:
    """A gzip body decompressed, refusing to produce more than ``limit`` bytes.

    Parameters:
      body(bytes): The gzip stream.
      limit(int): Most bytes the decompressed body may have.
      reserve(Callable[[int], None]|None): Called with the size of each part before it is
        kept; it raises to stop the inflation.

    Raises:
      PayloadError: 413 when it inflates beyond ``limit``, 400 when it is not valid gzip.
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while pending:
            part = inflater.decompress(pending, _INFLATE_CHUNK)
            size += len(part)
            if size > limit:
                raise PayloadError(413, f"decompressed body exceeds {limit} bytes")
            if reserve is not None:
                # Twice: the parts, then the body they are joined into.
                reserve(2 * len(part))
            parts.append(part)
            pending = inflater.unconsumed_tail
        if not inflater.eof:
            raise PayloadError(400, "truncated gzip body")
    except zlib.error as error:
        raise PayloadError(400, f"invalid gzip body: {error}") from None
    return b"".join(parts)


def _hex_ids_to_base64(document: Any) -> None:
    """Rewrite, in place, the hex ids of OTLP JSON as the base64 protobuf's JSON parser reads,
    refusing a document nested deeper than ``MAX_JSON_DEPTH``. Iterative: a hostile depth costs
    no Python stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise PayloadError(400, f"invalid OTLP JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _ID_FIELDS and isinstance(value, str):
                    try:
                        node[key] = base64.b64encode(bytes.fromhex(value)).decode()
                    except ValueError:
                        raise PayloadError(400, f"{key} {value!r} is not hexadecimal") from None
                elif isinstance(value, (dict, list)):
                    stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node if isinstance(item, (dict, list)))


def decode(body: bytes, media_type: str, message_type: type[Message]) -> Message:
    """An export request decoded from protobuf or OTLP JSON.

    Parameters:
      body(bytes): The decompressed body.
      media_type(str): ``PROTOBUF`` or ``JSON``.
      message_type(type[Message]): The ``Export*ServiceRequest`` class.

    Raises:
      PayloadError: 400 when the body is not a valid request.
    """
    message = message_type()
    if media_type == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as error:
            raise PayloadError(400, f"invalid protobuf body: {error}") from None
        return message
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError(400, f"invalid JSON body: {error}") from None
    except RecursionError:
        raise PayloadError(400, f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(document, dict):
        raise PayloadError(400, "invalid JSON body: expected an object")
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as error:
        raise PayloadError(400, f"invalid OTLP JSON body: {error}") from None
    return message


def _encode(message: Message, media_type: str) -> bytes:
    if media_type == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


_STATUS_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    503: code_pb2.UNAVAILABLE,
}


def _error(status: int, message: str, media_type: str, headers: dict[str, str] | None = None) -> Response:
    media_type = media_type if media_type in (PROTOBUF, JSON) else JSON
    body = status_pb2.Status(code=_STATUS_CODES.get(status, code_pb2.UNKNOWN), message=message)
    return Response(_encode(body, media_type), status_code=status, media_type=media_type, headers=headers)


def _forget_frames(error: BaseException | None) -> None:
    """Drop the tracebacks of an error and of those it was raised from. Their frames hold the
    request's body and its inflated parts, and the frames and tracebacks reference each other:
    kept, they would stay in memory until the garbage collector happens to run."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


class OtlpReceiver:
    """Accepts OTLP/HTTP exports and hands them to the store, ``/metrics`` and the upstream.

    Parameters:
      store(TelemetryStore|None): Where spans, metric points and logs go; ``None`` with
        ``--no-store``.
      metrics(ReceivedMetrics|None): Where task metrics go for ``/metrics``.
      forwarder(OtlpForwarder|None): Where raw payloads go with ``--forward``.
      limits(ReceiverLimits): How large a request may be.
      attribute_limits(AttributeLimits|None): How much one span, log record or point may carry;
        the defaults of ``AttributeLimits`` when ``None``.

    Example:

      >>> receiver = OtlpReceiver(store, ReceivedMetrics())
      >>> app.include_router(receiver.router())
    """

    def __init__(
        self,
        store: TelemetryStore | None,
        metrics: ReceivedMetrics | None = None,
        forwarder: OtlpForwarder | None = None,
        limits: ReceiverLimits = ReceiverLimits(),
        attribute_limits: AttributeLimits | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.forwarder = forwarder
        self.limits = limits
        self.attribute_limits = attribute_limits or AttributeLimits()
        self.budget = MemoryBudget(limits.memory_budget)

    def router(self, dependencies: list[Any] | None = None) -> APIRouter:
        """The three OTLP routes.

        Parameters:
          dependencies(list|None): FastAPI dependencies of every route (access checks).
        """
        router = APIRouter(tags=["otlp"], dependencies=dependencies or [])
        routes: tuple[tuple[_Signal, Callable[[Any], tuple[Any, Future[int] | None]]], ...] = (
            (_TRACES, self._accept_traces),
            (_METRICS, self._accept_metrics),
            (_LOGS, self._accept_logs),
        )
        for signal, accept in routes:
            router.add_api_route(
                signal.path,
                self._endpoint(signal, accept),
                methods=["POST"],
                summary=f"OTLP/HTTP export ({signal.path.rsplit('/', 1)[-1]})",
                response_class=Response,
                # A protocol endpoint, specified by OTLP/HTTP rather than this API's schema.
                include_in_schema=False,
            )
        return router

    def _endpoint(self, signal: _Signal, accept: Callable[[Any], tuple[Any, Future[int] | None]]) -> Any:
        async def export(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            media_type = _media_type(content_type)
            hold = _Hold(self.budget)
            try:
                raw = await self._read_body(request, media_type, hold)
                encoding = request.headers.get("content-encoding", "").strip().lower() or None
                message, dropped, batch, committed = await run_in_threadpool(
                    self._ingest, signal, accept, raw, media_type, encoding, hold
                )
                refused = await self._committed(committed)
            except PayloadError as error:
                _forget_frames(error)
                hold.release()
                if error.status >= 500:
                    headers = {"Retry-After": str(RETRY_AFTER)}
                    return _error(error.status, error.message, media_type, headers)
                logger.info("Refused an OTLP export to %s: %s", signal.path, error.message)
                return _error(error.status, error.message, media_type)
            except BaseException:
                hold.release()
                raise
            try:
                return await self._answer(
                    signal, message, dropped, batch, refused, raw, content_type, encoding
                )
            finally:
                hold.release()

        return export

    async def _answer(
        self,
        signal: _Signal,
        message: Message,
        dropped: Dropped,
        batch: Any,
        refused: int,
        raw: bytes,
        content_type: str,
        encoding: str | None,
    ) -> Response:
        """Sum, forward and acknowledge an export whose rows are committed."""
        media_type = _media_type(content_type)
        if signal is _METRICS and self.metrics is not None:
            # Only once stored: a delta counted for a request answered 503 would be counted
            # again when the exporter retries it.
            await run_in_threadpool(self.metrics.update, message)
        if self.forwarder is not None:
            self.forwarder.submit(signal.path, raw, content_type, encoding)
        response = signal.response_type()
        rejected, reasons = batch.rejected, [batch.error] if batch.error else []
        if refused:
            rejected += refused
            reasons.append(f"{refused} item(s) the store could not hold")
        note = dropped.message(self.attribute_limits)
        if note:
            # Kept, but not whole: a partial success with nothing rejected is a warning.
            reasons.append(note)
        if reasons:
            partial = response.partial_success
            setattr(partial, signal.partial_field, rejected)
            partial.error_message = "; ".join(reasons)
        return Response(_encode(response, media_type), media_type=media_type)

    async def _committed(self, committed: Future[int] | None) -> int:
        """Wait for a batch's commit; the rows the store refused. Raises ``PayloadError`` 503."""
        if committed is None:
            return 0
        try:
            return await asyncio.wait_for(asyncio.wrap_future(committed), self.limits.commit_timeout)
        except TimeoutError:
            raise PayloadError(503, "the store did not commit in time; retry later") from None
        except Exception as error:
            raise PayloadError(503, f"the store could not commit: {error}; retry later") from None

    async def _read_body(self, request: Request, media_type: str, hold: _Hold) -> bytes:
        if media_type not in (PROTOBUF, JSON):
            raise PayloadError(415, f"unsupported content type {media_type!r}: use {PROTOBUF} or {JSON}")
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip"):
            raise PayloadError(415, f"unsupported content encoding {encoding!r}: use gzip or none")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_body:
            raise PayloadError(413, f"body exceeds {self.limits.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.limits.max_body:
                raise PayloadError(413, f"body exceeds {self.limits.max_body} bytes")
            # Twice: the chunks, then the body they are joined into.
            hold.take(2 * len(chunk))
            chunks.append(chunk)
        return b"".join(chunks)

    def _ingest(
        self,
        signal: _Signal,
        accept: Callable[[Any], tuple[Any, Future[int] | None]],
        raw: bytes,
        media_type: str,
        encoding: str | None,
        hold: _Hold,
    ) -> tuple[Message, Dropped, Any, Future[int] | None]:
        body = inflate(raw, self.limits.max_decompressed, hold.take) if encoding == "gzip" else raw
        if len(body) > self.limits.max_decompressed:
            raise PayloadError(413, f"body exceeds {self.limits.max_decompressed} bytes")
        hold.take(len(body) * DECODE_COST[media_type])
        message = decode(body, media_type, signal.request_type)
        dropped = self.attribute_limits.apply(message)
        return (message, dropped, *accept(message))

    def _write(self, write: Callable[[Any], Future[int]], batch: Any) -> Future[int] | None:
        if self.store is None:
            return None
        try:
            return write(batch)
        except StoreBusy as error:
            raise PayloadError(503, str(error)) from None

    def _accept_traces(self, request: Any) -> tuple[Any, Future[int] | None]:
        batch = span_rows(request)
        return batch, self._write(self.store.writer.write_spans, batch) if self.store else None

    def _accept_metrics(self, request: Any) -> tuple[Any, Future[int] | None]:
        batch = metric_rows(request)
        return batch, self._write(self.store.writer.write_metrics, batch) if self.store else None

    def _accept_logs(self, request: Any) -> tuple[Any, Future[int] | None]:
        batch = log_rows(request)
        return batch, self._write(self.store.writer.write_logs, batch) if self.store else None
