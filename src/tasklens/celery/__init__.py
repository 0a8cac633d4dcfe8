"""OpenTelemetry instrumentation for Celery.

Install ``tasklens[celery]``, then instrument the process (producer and worker alike)::

    from tasklens.celery import CeleryInstrumentor
    CeleryInstrumentor().instrument()        # or: opentelemetry-instrument celery -A app worker

``tasklens.setup()`` does it for you after configuring the SDK from ``OTEL_*``.

What you get (``docs/telemetry.md`` lists every name):

- ``send {queue}`` PRODUCER spans around each publish (``delay``, ``apply_async``, ``retry``,
  canvas steps, ``send_task`` by name), with every attribute set at start. The trace context
  travels as W3C ``traceparent``/``tracestate`` message headers, the carrier
  opentelemetry-instrumentation-celery uses, so mixed fleets keep one trace. Every task also
  carries ``tasklens_published_at`` (Unix ms), the start of its queue wait.
- ``process {queue}`` CONSUMER spans, children of the send (or linked with ``use_links=True``),
  current while the task body runs, so retries, chain steps, group members, chord callbacks and
  ``Task.replace`` stay in one trace. Failures set status ERROR and ``error.type``; events record
  scheduled retries, rejections, revocations and soft time limits. Eager tasks get their
  ``process`` span under the caller's span.
- Metrics: ``messaging.client.sent.messages``, ``messaging.client.operation.duration``,
  ``messaging.process.duration``, ``messaging.client.consumed.messages``,
  ``celery.task.retries``, ``celery.task.failures`` (by state), ``celery.tasks.in_flight`` and
  ``celery.task.queue_wait``, by queue and task name.
- Log records made inside a task carry ``celery_task_id`` and ``celery_task_name``.
"""

from __future__ import annotations

from tasklens.celery.instrumentor import CeleryInstrumentor
from tasklens.celery.tracing import current_task_fields

__all__ = ["CeleryInstrumentor", "current_task_fields"]
