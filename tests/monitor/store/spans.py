"""Spans shaped like the Dramatiq instrumentation's, made with the real SDK, for store tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from tasklens import semconv

NS = 1_000_000_000


@dataclass(frozen=True)
class Run:
    """What the test knows about one run it made."""

    trace_id: str
    span_id: str
    message_id: str
    actor: str
    queue: str
    start: float
    duration: float
    failed: bool


class SpanFactory:
    """Makes send and process spans with the semconv attributes, at chosen times."""

    def __init__(self, service: str = "billing-worker", instance: str = "worker-1") -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service, "service.instance.id": instance})
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tasklens.dramatiq")

    def run(
        self,
        actor: str = "send_welcome",
        queue: str = "default",
        *,
        start: float | None = None,
        duration: float = 0.05,
        retries: int = 0,
        error: Exception | None = None,
        retry_scheduled: bool = False,
        dead_lettered: bool = False,
        message_id: str | None = None,
    ) -> Run:
        """A ``send {queue}`` span and its ``process {queue}`` child."""
        start = time.time() if start is None else start
        message_id = message_id or str(uuid.uuid4())
        common = {
            semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_DRAMATIQ,
            semconv.MESSAGING_DESTINATION_NAME: queue,
            semconv.MESSAGING_MESSAGE_ID: message_id,
            semconv.DRAMATIQ_ACTOR_NAME: actor,
        }
        send = self.tracer.start_span(
            semconv.span_name(semconv.OPERATION_SEND, queue),
            kind=SpanKind.PRODUCER,
            start_time=int((start - 0.01) * NS),
            attributes={
                **common,
                semconv.MESSAGING_OPERATION_TYPE: semconv.OPERATION_SEND,
                semconv.MESSAGING_OPERATION_NAME: semconv.OPERATION_SEND,
            },
        )
        send.end(end_time=int((start - 0.009) * NS))
        process = self.tracer.start_span(
            semconv.span_name(semconv.OPERATION_PROCESS, queue),
            context=set_span_in_context(send),
            kind=SpanKind.CONSUMER,
            start_time=int(start * NS),
            attributes={
                **common,
                semconv.MESSAGING_OPERATION_TYPE: semconv.OPERATION_PROCESS,
                semconv.MESSAGING_OPERATION_NAME: semconv.OPERATION_PROCESS,
                semconv.DRAMATIQ_MESSAGE_RETRIES: retries,
            },
        )
        if error is not None:
            process.record_exception(error, timestamp=int((start + duration / 2) * NS))
            process.set_attribute(semconv.ERROR_TYPE, type(error).__qualname__)
            process.set_status(Status(StatusCode.ERROR, str(error)))
        if retry_scheduled:
            process.add_event(
                semconv.EVENT_RETRY_SCHEDULED,
                {semconv.DRAMATIQ_RETRY_COUNT: retries + 1, semconv.DRAMATIQ_RETRY_DELAY: 1000},
            )
        if dead_lettered:
            process.add_event(
                semconv.EVENT_DEAD_LETTERED,
                {semconv.DRAMATIQ_DEAD_LETTER_REASON: semconv.REASON_RETRIES_EXHAUSTED},
            )
        process.end(end_time=int((start + duration) * NS))
        context = process.get_span_context()
        return Run(
            trace_id=f"{context.trace_id:032x}",
            span_id=f"{context.span_id:016x}",
            message_id=message_id,
            actor=actor,
            queue=queue,
            start=start,
            duration=duration,
            failed=error is not None,
        )

    def finished(self) -> Sequence[ReadableSpan]:
        """Every span made since the last call, and forget them."""
        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        return spans

    def request(self) -> ExportTraceServiceRequest:
        """An export request of every span made since the last call."""
        return encode_spans(self.finished())
