"""A straightforward tracing middleware, written the way most hand-rolled ones are.

It is the yardstick the issue's targets are phrased against ("about half the overhead of the
straightforward middleware"): stock SDK tracer, attributes set on every span, the context
injected into ``message.options`` and extracted again on the worker, a counter and a histogram
per message. It is not part of tasklens and only runs when asked for (``--variants reference``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from opentelemetry import context, metrics, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = ["ReferenceMiddleware"]


class ReferenceMiddleware(dramatiq.Middleware):
    """Send and process spans plus two metrics, via the global SDK providers."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("benchmarks.reference")
        meter = metrics.get_meter("benchmarks.reference")
        self.processed = meter.create_counter("reference.processed", unit="{message}")
        self.duration = meter.create_histogram("reference.duration", unit="s")
        self.local = threading.local()

    def before_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: Any) -> None:
        span = self.tracer.start_span(
            f"send {message.queue_name}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "dramatiq.actor.name": message.actor_name,
            },
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        message.options["otel_context"] = carrier
        self.local.send_span = span

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message, delay: Any) -> None:
        span = getattr(self.local, "send_span", None)
        if span is not None:
            span.end()
            self.local.send_span = None

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        parent = propagate.extract(message.options.get("otel_context") or {})
        span = self.tracer.start_span(
            f"process {message.queue_name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "dramatiq",
                "messaging.destination.name": message.queue_name,
                "messaging.message.id": message.message_id,
                "dramatiq.actor.name": message.actor_name,
            },
        )
        token = context.attach(trace.set_span_in_context(span))
        self.local.process = (span, token, time.perf_counter())

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.Message,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        state = getattr(self.local, "process", None)
        if state is None:
            return
        span, token, started = state
        self.local.process = None
        attributes = {
            "messaging.destination.name": message.queue_name,
            "dramatiq.actor.name": message.actor_name,
        }
        if exception is not None:
            span.set_status(Status(StatusCode.ERROR))
            span.record_exception(exception)
            attributes["error.type"] = type(exception).__qualname__
        self.processed.add(1, attributes)
        self.duration.record(time.perf_counter() - started, attributes)
        span.end()
        context.detach(token)

    after_skip_message = after_process_message
