"""OpenTelemetry instrumentation for Dramatiq.

Install ``tasklens[dramatiq]``, then either instrument every broker::

    from tasklens.dramatiq import DramatiqInstrumentor
    DramatiqInstrumentor().instrument()          # or: opentelemetry-instrument dramatiq app

or add the middleware to one broker::

    from tasklens.dramatiq import OpenTelemetryMiddleware
    broker.add_middleware(OpenTelemetryMiddleware())

``tasklens.setup()`` does the first for you after configuring the SDK from ``OTEL_*``.

What you get (``docs/telemetry.md`` lists every name):

- ``send {queue}`` PRODUCER spans around each enqueue; the trace context travels in
  ``message.options["otel_context"]``. Delayed messages moving to their ready queue make no
  span and keep their context.
- ``process {queue}`` CONSUMER spans, children of the send (or linked to it with
  ``use_links=True``), current while the actor runs, sync or async. Retries, pipeline steps,
  group callbacks and ``on_success``/``on_failure`` messages are sent while the span is open,
  so they stay in the trace. Failures set status ERROR and ``error.type``; events record
  scheduled retries, dead letters (with a reason) and skipped messages.
- Metrics: ``messaging.client.sent.messages``, ``messaging.client.operation.duration``,
  ``messaging.process.duration``, ``messaging.client.consumed.messages``,
  ``dramatiq.message.retries``, ``dramatiq.message.dead_lettered``,
  ``dramatiq.messages.in_flight`` and ``dramatiq.message.queue_wait``, by queue and actor.
"""

from __future__ import annotations

from tasklens.dramatiq.instrumentor import DramatiqInstrumentor
from tasklens.dramatiq.middleware import OpenTelemetryMiddleware, current_message

__all__ = ["DramatiqInstrumentor", "OpenTelemetryMiddleware", "current_message"]
