"""Every name tasklens puts on the wire, in one place.

Span, attribute, event and metric names follow the OpenTelemetry messaging semantic
conventions where one exists (``messaging.*``, ``server.*``, ``error.type``) and use the
``dramatiq.*`` / ``tasklens.*`` namespaces otherwise. ``docs/telemetry.md`` documents each of
them; a test fails when the two disagree.

This module knows about nothing else in the project and imports nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ATTRIBUTES",
    "EVENTS",
    "METRICS",
    "MetricSpec",
]

#: The semantic-conventions version these names follow, given to every tracer and meter.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"

# -- Values ---------------------------------------------------------------------------------------

#: The value of ``messaging.system`` on every span and metric point.
MESSAGING_SYSTEM_DRAMATIQ = "dramatiq"
#: The value of ``messaging.system`` for Celery's tasks, queues and workers.
MESSAGING_SYSTEM_CELERY = "celery"

#: ``messaging.operation.type`` / ``messaging.operation.name`` of the producer span.
OPERATION_SEND = "send"
#: ``messaging.operation.type`` / ``messaging.operation.name`` of the consumer span.
OPERATION_PROCESS = "process"

# -- Message options (the wire format between producer and worker) -------------------------------

#: ``message.options`` key holding the W3C trace-context carrier written by the producer.
CONTEXT_OPTION = "otel_context"
#: ``message.options`` key holding when the message became ready to run (Unix ms); the start of
#: the queue wait.
READY_AT_OPTION = "otel_ready_at"

#: Celery message header the tasklens producer stamps with when it published the task (Unix ms,
#: an integer): the monitor reads a ready queue's oldest age from it (unknown without it).
PUBLISHED_AT_HEADER = "tasklens_published_at"

# -- Span attributes ------------------------------------------------------------------------------

MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

DRAMATIQ_ACTOR_NAME = "dramatiq.actor.name"
#: Delay requested at send time, in milliseconds.
DRAMATIQ_MESSAGE_DELAY = "dramatiq.message.delay"
#: How many times the message had been retried before this attempt (0 on the first).
DRAMATIQ_MESSAGE_RETRIES = "dramatiq.message.retries"
#: The message's args and kwargs, redacted and truncated (only with ``capture_args``).
DRAMATIQ_MESSAGE_ARGS = "dramatiq.message.args"

# -- Span events and their attributes ------------------------------------------------------------

#: The attempt failed and the Retries middleware scheduled another one.
EVENT_RETRY_SCHEDULED = "dramatiq.retry.scheduled"
#: The message was rejected and goes to the dead-letter queue.
EVENT_DEAD_LETTERED = "dramatiq.message.dead_lettered"
#: A middleware skipped the message before the actor ran (for example AgeLimit).
EVENT_SKIPPED = "dramatiq.message.skipped"

#: Event attribute: the retry count of the scheduled attempt.
DRAMATIQ_RETRY_COUNT = "dramatiq.retry.count"
#: Event attribute: backoff before the scheduled attempt, in milliseconds.
DRAMATIQ_RETRY_DELAY = "dramatiq.retry.delay"
#: Event and metric attribute: why a message was dead-lettered (see ``DeadLetterReason``).
DRAMATIQ_DEAD_LETTER_REASON = "dramatiq.dead_letter.reason"

DeadLetterReason = Literal["retries_exhausted", "throws", "age_limit", "actor_not_found", "failed"]
#: Retries ran out (``max_retries`` reached or ``retry_when`` said no).
REASON_RETRIES_EXHAUSTED: DeadLetterReason = "retries_exhausted"
#: The exception is listed in the actor's ``throws``: never retried.
REASON_THROWS: DeadLetterReason = "throws"
#: AgeLimit skipped the message because it was older than ``max_age``.
REASON_AGE_LIMIT: DeadLetterReason = "age_limit"
#: No actor of that name is declared in the worker: Dramatiq rejects the message unprocessed.
REASON_ACTOR_NOT_FOUND: DeadLetterReason = "actor_not_found"
#: Another middleware failed the message.
REASON_FAILED: DeadLetterReason = "failed"

# -- Log record attributes (set on records logged while an actor runs) ---------------------------

#: Added to ``logging.LogRecord`` next to ``otelTraceID``/``otelSpanID``.
LOG_MESSAGE_ID = "dramatiq_message_id"
LOG_ACTOR_NAME = "dramatiq_actor_name"

# -- Metrics --------------------------------------------------------------------------------------

Instrument = Literal["counter", "histogram", "updowncounter", "gauge"]

#: Bucket boundaries the messaging conventions advise for duration histograms, in seconds.
DURATION_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
#: Queue waits run from milliseconds to hours, so the buckets reach further than the durations'.
QUEUE_WAIT_BUCKETS_S: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)


@dataclass(frozen=True)
class MetricSpec:
    """A metric's name, instrument, unit and meaning."""

    name: str
    instrument: Instrument
    unit: str
    description: str
    buckets: tuple[float, ...] | None = None


SENT_MESSAGES = MetricSpec(
    "messaging.client.sent.messages",
    "counter",
    "{message}",
    "Messages a producer attempted to send to the broker.",
)
CLIENT_OPERATION_DURATION = MetricSpec(
    "messaging.client.operation.duration",
    "histogram",
    "s",
    "Duration of the broker call that sent a message.",
    DURATION_BUCKETS_S,
)
PROCESS_DURATION = MetricSpec(
    "messaging.process.duration",
    "histogram",
    "s",
    "Duration of processing a message, from the first middleware to the last.",
    DURATION_BUCKETS_S,
)
CONSUMED_MESSAGES = MetricSpec(
    "messaging.client.consumed.messages",
    "counter",
    "{message}",
    "Messages a worker took from the broker and processed (or skipped).",
)
MESSAGE_RETRIES = MetricSpec(
    "dramatiq.message.retries",
    "counter",
    "{retry}",
    "Retries scheduled by the Retries middleware.",
)
MESSAGE_DEAD_LETTERED = MetricSpec(
    "dramatiq.message.dead_lettered",
    "counter",
    "{message}",
    "Messages rejected to the dead-letter queue, by reason.",
)
MESSAGES_IN_FLIGHT = MetricSpec(
    "dramatiq.messages.in_flight",
    "updowncounter",
    "{message}",
    "Messages being processed by this process right now.",
)
MESSAGE_QUEUE_WAIT = MetricSpec(
    "dramatiq.message.queue_wait",
    "histogram",
    "s",
    "Time from when a message became ready to when processing started.",
    QUEUE_WAIT_BUCKETS_S,
)

# Broker-side metrics, read from the broker by ``tasklens monitor``: the same families for every
# task library, told apart by ``messaging.system``.

#: Attribute of ``tasklens.queue.depth``: ready | delayed | in_flight | dead.
QUEUE_STATE = "state"
QueueState = Literal["ready", "delayed", "in_flight", "dead"]
QUEUE_STATES: tuple[QueueState, ...] = ("ready", "delayed", "in_flight", "dead")
#: Attribute of ``tasklens.queue.priority.ready``: the priority step (Celery on Redis: 0, 3, 6, 9
#: by default; 0 is served first).
QUEUE_PRIORITY = "priority"

QUEUE_DEPTH = MetricSpec(
    "tasklens.queue.depth",
    "gauge",
    "{message}",
    "Messages in a queue, by state (ready, delayed, in_flight, dead).",
)
QUEUE_OLDEST_MESSAGE_AGE = MetricSpec(
    "tasklens.queue.oldest_message.age",
    "gauge",
    "s",
    "Age of the oldest ready message in a queue.",
)
QUEUE_PRIORITY_READY = MetricSpec(
    "tasklens.queue.priority.ready",
    "gauge",
    "{message}",
    "Ready messages of a queue in each priority step (Celery on Redis).",
)
QUEUE_OLDEST_UNACKED_AGE = MetricSpec(
    "tasklens.queue.oldest_unacked.age",
    "gauge",
    "s",
    "Time since a worker took the oldest message it has not acknowledged yet (Celery on Redis).",
)
QUEUE_VISIBILITY_TIMEOUT = MetricSpec(
    "tasklens.queue.visibility_timeout",
    "gauge",
    "s",
    "Unacknowledged messages older than this are delivered again (Celery on Redis).",
)
WORKERS = MetricSpec(
    "tasklens.workers",
    "gauge",
    "{worker}",
    "Live workers: heartbeats (Dramatiq on Redis, Celery) or consumers (Dramatiq on RabbitMQ).",
)
BROKER_UP = MetricSpec(
    "tasklens.broker.up",
    "gauge",
    "1",
    "1 when the last read of the broker succeeded, else 0.",
)
BROKER_SCRAPE_DURATION = MetricSpec(
    "tasklens.broker.scrape.duration",
    "gauge",
    "s",
    "How long the last read of the broker took.",
)

#: Every metric, worker side then broker side.
METRICS: tuple[MetricSpec, ...] = (
    SENT_MESSAGES,
    CLIENT_OPERATION_DURATION,
    PROCESS_DURATION,
    CONSUMED_MESSAGES,
    MESSAGE_RETRIES,
    MESSAGE_DEAD_LETTERED,
    MESSAGES_IN_FLIGHT,
    MESSAGE_QUEUE_WAIT,
    QUEUE_DEPTH,
    QUEUE_OLDEST_MESSAGE_AGE,
    QUEUE_PRIORITY_READY,
    QUEUE_OLDEST_UNACKED_AGE,
    QUEUE_VISIBILITY_TIMEOUT,
    WORKERS,
    BROKER_UP,
    BROKER_SCRAPE_DURATION,
)

#: Every span and metric attribute name.
ATTRIBUTES: tuple[str, ...] = (
    MESSAGING_SYSTEM,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_OPERATION_NAME,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_MESSAGE_ID,
    SERVER_ADDRESS,
    SERVER_PORT,
    ERROR_TYPE,
    DRAMATIQ_ACTOR_NAME,
    DRAMATIQ_MESSAGE_DELAY,
    DRAMATIQ_MESSAGE_RETRIES,
    DRAMATIQ_MESSAGE_ARGS,
    DRAMATIQ_RETRY_COUNT,
    DRAMATIQ_RETRY_DELAY,
    DRAMATIQ_DEAD_LETTER_REASON,
    QUEUE_STATE,
    QUEUE_PRIORITY,
)

#: Every span event name.
EVENTS: tuple[str, ...] = (EVENT_RETRY_SCHEDULED, EVENT_DEAD_LETTERED, EVENT_SKIPPED)


def span_name(operation: str, queue_name: str) -> str:
    """``{messaging.operation.name} {destination}``, as the messaging conventions name spans."""
    return f"{operation} {queue_name}"
