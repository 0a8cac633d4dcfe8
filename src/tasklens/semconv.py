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

# -- Broker keys (the wire format between Dramatiq workers on Redis and the readers) -------------

#: Key, after Dramatiq's namespace, of the sorted set of worker processes announcing themselves:
#: member the worker's id, score when it counts as gone unless it announces itself again (Redis
#: server time, Unix ms).
WORKERS_KEY = "__tasklens__.workers"
#: Key, after the namespace, of the hash of worker id to the worker's details (a JSON object).
WORKER_DETAILS_KEY = "__tasklens__.workers.details"
#: Key, after the namespace, present while any worker announced itself recently: with it, an
#: empty ``WORKERS_KEY`` means no worker, not workers that do not announce themselves.
WORKERS_ANNOUNCED_KEY = "__tasklens__.workers.announced"

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
    "Live workers: announced worker processes, else recent heartbeats (Dramatiq on Redis), "
    "heartbeats (Celery) or consumers (Dramatiq on RabbitMQ).",
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
RECEIVER_DROPPED_SERIES = MetricSpec(
    "tasklens.receiver.dropped_series",
    "counter",
    "{series}",
    "Data points of new received task-metric series dropped because /metrics held its limit of series.",
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
    RECEIVER_DROPPED_SERIES,
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


# -- Celery ---------------------------------------------------------------------------------------
# The same span and metric shape as Dramatiq's (``send {queue}``, ``process {queue}`` and the four
# messaging metrics, with ``messaging.system=celery``), plus the ``celery.*`` names below.

#: The value of ``messaging.system`` on every Celery span and metric point.
MESSAGING_SYSTEM_CELERY = "celery"

#: Message header stamped on every task sent: when it was published (Unix ms). The start of the
#: queue wait (unless the task has an eta), and what the broker monitor reads for the age of the
#: oldest message.
PUBLISHED_AT_HEADER = "tasklens_published_at"

CELERY_TASK_NAME = "celery.task.name"
#: How many times the task had been retried before this attempt (0 on the first).
CELERY_TASK_RETRIES = "celery.task.retries"
#: The task's eta (ISO 8601), when it was sent with a countdown or an eta.
CELERY_TASK_ETA = "celery.task.eta"
#: Seconds from the publish to the task's eta, when it has one.
CELERY_TASK_COUNTDOWN = "celery.task.countdown"
#: The message priority the task was sent with, when it has one.
CELERY_TASK_PRIORITY = "celery.task.priority"
#: The task's args and kwargs, redacted and truncated (only with ``capture_args``).
CELERY_TASK_ARGS = "celery.task.args"

#: The attempt failed (or asked to be retried) and another attempt was sent.
EVENT_CELERY_RETRY_SCHEDULED = "celery.retry.scheduled"
#: The message was rejected: the task raised ``Reject``, or the worker knows no such task, or the
#: message could not be decoded.
EVENT_CELERY_REJECTED = "celery.task.rejected"
#: The task was revoked (before it ran, or terminated) or expired.
EVENT_CELERY_REVOKED = "celery.task.revoked"
#: The task hit its soft time limit (``SoftTimeLimitExceeded`` raised in it) or its hard one.
EVENT_CELERY_TIME_LIMIT = "celery.task.time_limit"

#: The pool process running the task died (``WorkerLostError``): recorded by the worker's main
#: process, since the pool process could not end its own span.
EVENT_CELERY_WORKER_LOST = "celery.worker.lost"

#: Event attribute: why the retry was asked for (the Retry's description).
CELERY_RETRY_REASON = "celery.retry.reason"
#: Event attribute: seconds until the retry runs, when known.
CELERY_RETRY_COUNTDOWN = "celery.retry.countdown"
#: Event attribute: why the message was rejected (see ``CeleryRejectReason``).
CELERY_REJECT_REASON = "celery.reject.reason"
#: Event attribute: whether a rejected message goes back to its queue.
CELERY_REJECT_REQUEUE = "celery.reject.requeue"
#: Event attribute: the revoked task was terminated while it ran.
CELERY_REVOKED_TERMINATED = "celery.revoked.terminated"
#: Event attribute: the task was revoked because its ``expires`` passed.
CELERY_REVOKED_EXPIRED = "celery.revoked.expired"
#: Event attribute: which time limit was hit: ``soft`` or ``hard``.
CELERY_TIME_LIMIT_KIND = "celery.time_limit.kind"
#: Metric attribute of ``celery.task.failures``: ``failure``, ``retry``, ``revoked`` or ``rejected``.
CELERY_TASK_STATE = "celery.task.state"

CeleryRejectReason = Literal["reject", "unknown_task", "invalid_message"]
#: The task raised ``celery.exceptions.Reject``.
REJECT_REASON_REJECT: CeleryRejectReason = "reject"
#: The worker has no task registered under the message's name.
REJECT_REASON_UNKNOWN_TASK: CeleryRejectReason = "unknown_task"
#: The worker could not read the message as a task.
REJECT_REASON_INVALID_MESSAGE: CeleryRejectReason = "invalid_message"

CeleryFailureState = Literal["failure", "retry", "revoked", "rejected"]
STATE_FAILURE: CeleryFailureState = "failure"
STATE_RETRY: CeleryFailureState = "retry"
STATE_REVOKED: CeleryFailureState = "revoked"
STATE_REJECTED: CeleryFailureState = "rejected"

TimeLimitKind = Literal["soft", "hard"]
TIME_LIMIT_SOFT: TimeLimitKind = "soft"
TIME_LIMIT_HARD: TimeLimitKind = "hard"

#: Added to ``logging.LogRecord`` inside a Celery task, next to ``otelTraceID``/``otelSpanID``.
LOG_CELERY_TASK_ID = "celery_task_id"
LOG_CELERY_TASK_NAME = "celery_task_name"

CELERY_TASK_RETRIES_METRIC = MetricSpec(
    "celery.task.retries",
    "counter",
    "{retry}",
    "Retries a task asked for (retry() or autoretry_for).",
)
CELERY_TASK_FAILURES = MetricSpec(
    "celery.task.failures",
    "counter",
    "{task}",
    "Task attempts that did not succeed, by state (failure, retry, revoked, rejected).",
)
CELERY_TASKS_IN_FLIGHT = MetricSpec(
    "celery.tasks.in_flight",
    "updowncounter",
    "{task}",
    "Tasks being executed by this process right now.",
)
CELERY_TASK_QUEUE_WAIT = MetricSpec(
    "celery.task.queue_wait",
    "histogram",
    "s",
    "Time from when a task became runnable (published, or its eta) to when it started.",
    QUEUE_WAIT_BUCKETS_S,
)

METRICS = (
    *METRICS,
    CELERY_TASK_RETRIES_METRIC,
    CELERY_TASK_FAILURES,
    CELERY_TASKS_IN_FLIGHT,
    CELERY_TASK_QUEUE_WAIT,
)

ATTRIBUTES = (
    *ATTRIBUTES,
    CELERY_TASK_NAME,
    CELERY_TASK_RETRIES,
    CELERY_TASK_ETA,
    CELERY_TASK_COUNTDOWN,
    CELERY_TASK_PRIORITY,
    CELERY_TASK_ARGS,
    CELERY_RETRY_REASON,
    CELERY_RETRY_COUNTDOWN,
    CELERY_REJECT_REASON,
    CELERY_REJECT_REQUEUE,
    CELERY_REVOKED_TERMINATED,
    CELERY_REVOKED_EXPIRED,
    CELERY_TIME_LIMIT_KIND,
    CELERY_TASK_STATE,
)

EVENTS = (
    *EVENTS,
    EVENT_CELERY_RETRY_SCHEDULED,
    EVENT_CELERY_REJECTED,
    EVENT_CELERY_REVOKED,
    EVENT_CELERY_TIME_LIMIT,
    EVENT_CELERY_WORKER_LOST,
)
