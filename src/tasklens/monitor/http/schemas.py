"""The JSON bodies of the monitor's REST API, as documented in ``/openapi.json``.

Counts a broker cannot tell are ``null``, never 0.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasklens.brokers.base import BrokerPart, BrokerSnapshot, DeadLetter, QueueStats, WorkerInfo

__all__ = [
    "BrokerPartOut",
    "DeadLetterOut",
    "DeadLetterPageOut",
    "DeleteIn",
    "DeletedOut",
    "HealthOut",
    "PurgedOut",
    "QueueOut",
    "QueuesOut",
    "RequeueAll",
    "RequeueIds",
    "RequeueIn",
    "RequeuedOut",
    "WorkerOut",
    "WorkersOut",
]

#: Most message ids one request may name.
MAX_IDS_PER_REQUEST = 10_000


class QueueOut(BaseModel):
    """One queue's counts."""

    name: str
    messaging_system: str | None = Field(
        default=None, description="The task library whose layout the queue is in: dramatiq or celery."
    )
    ready: int | None
    delayed: int | None
    in_flight: int | None
    dead: int | None
    oldest_age: float | None = Field(description="Age of the oldest ready message, in seconds.")
    consumers: int | None
    pending: int = Field(description="Ready plus delayed messages, unknowns counted as 0.")
    priorities: dict[str, int] | None = Field(
        default=None,
        description="Ready messages per priority step (Celery on Redis; 0 first); they sum to ready.",
    )
    oldest_unacked_age: float | None = Field(
        default=None,
        description="Seconds since a worker took its oldest unacknowledged message (Celery on Redis).",
    )
    visibility_timeout: float | None = Field(
        default=None,
        description="Unacknowledged messages older than this are redelivered, in seconds (Celery on Redis).",
    )

    @classmethod
    def of(cls, stats: QueueStats, messaging_system: str | None = None) -> QueueOut:
        return cls(
            messaging_system=stats.messaging_system or messaging_system,
            name=stats.name,
            ready=stats.ready,
            delayed=stats.delayed,
            in_flight=stats.in_flight,
            dead=stats.dead,
            oldest_age=stats.oldest_age,
            consumers=stats.consumers,
            pending=stats.pending,
            priorities=None
            if stats.priorities is None
            else {str(step): count for step, count in sorted(stats.priorities.items())},
            oldest_unacked_age=stats.oldest_unacked_age,
            visibility_timeout=stats.visibility_timeout,
        )


class BrokerPartOut(BaseModel):
    """One of the brokers read, when the monitor reads several."""

    broker: str = Field(description="The broker URL without credentials.")
    messaging_system: str | None = Field(description="Its task library, null until it first answers.")
    up: bool = Field(description="Whether it answered the last read.")
    error: str | None = Field(default=None, description="Why it did not.")
    workers: int | None = None
    workers_note: str | None = None

    @classmethod
    def of(cls, part: BrokerPart) -> BrokerPartOut:
        return cls(
            broker=part.broker,
            messaging_system=part.messaging_system,
            up=part.up,
            error=part.error,
            workers=part.workers,
            workers_note=part.workers_note,
        )


def _parts(snapshot: BrokerSnapshot) -> list[BrokerPartOut] | None:
    return None if snapshot.brokers is None else [BrokerPartOut.of(part) for part in snapshot.brokers]


class QueuesOut(BaseModel):
    """Every queue of the broker (of every broker, when the monitor reads several)."""

    broker: str
    messaging_system: str = Field(
        default="dramatiq",
        description="The task library: dramatiq or celery (with several brokers, the first one's; "
        "each queue says its own).",
    )
    workers: int | None
    workers_note: str | None = Field(default=None, description="Why workers is null, when it is.")
    read_at: float = Field(description="When the broker was read, Unix seconds.")
    queues: list[QueueOut]
    brokers: list[BrokerPartOut] | None = Field(
        default=None, description="Each broker read and whether it answered, when there are several."
    )

    @classmethod
    def of(cls, snapshot: BrokerSnapshot, broker: str) -> QueuesOut:
        return cls(
            broker=broker,
            messaging_system=snapshot.messaging_system,
            workers=snapshot.workers,
            workers_note=snapshot.workers_note,
            read_at=snapshot.read_at,
            queues=[QueueOut.of(stats, snapshot.messaging_system) for stats in snapshot.queues],
            brokers=_parts(snapshot),
        )


class WorkerOut(BaseModel):
    """One live worker (Celery), from its heartbeats."""

    hostname: str = Field(description="The full node name, name@host.")
    last_heartbeat: float = Field(description="When its last heartbeat was received, Unix seconds.")
    expires_at: float = Field(description="When it counts as gone without another heartbeat, Unix seconds.")
    freq: float = Field(description="Its heartbeat interval, in seconds.")
    active: int | None
    processed: int | None
    pool: str | None
    concurrency: int | None
    pid: int | None
    software: str | None
    queues: list[str] | None = Field(
        default=None, description="The queues it consumes, where it tells (Dramatiq)."
    )
    messaging_system: str | None = Field(default=None, description="The task library: dramatiq or celery.")

    @classmethod
    def of(cls, worker: WorkerInfo, messaging_system: str | None = None) -> WorkerOut:
        return cls(
            messaging_system=worker.messaging_system or messaging_system,
            hostname=worker.hostname,
            last_heartbeat=worker.last_heartbeat,
            expires_at=worker.expires_at,
            freq=worker.freq,
            active=worker.active,
            processed=worker.processed,
            pool=worker.pool,
            concurrency=worker.concurrency,
            pid=worker.pid,
            software=worker.software,
            queues=list(worker.queues) if worker.queues is not None else None,
        )


class WorkersOut(BaseModel):
    """Live workers: heartbeats (Dramatiq on Redis, Celery) or consumers (Dramatiq on RabbitMQ)."""

    broker: str
    messaging_system: str = "dramatiq"
    workers: int | None
    workers_note: str | None = Field(default=None, description="Why workers is null, when it is.")
    items: list[WorkerOut] | None = Field(default=None, description="Each worker, where the layout tells.")
    read_at: float
    brokers: list[BrokerPartOut] | None = Field(
        default=None,
        description="Each broker read, its worker count and whether it answered, when there are several.",
    )

    @classmethod
    def of(cls, snapshot: BrokerSnapshot, broker: str) -> WorkersOut:
        return cls(
            broker=broker,
            messaging_system=snapshot.messaging_system,
            workers=snapshot.workers,
            workers_note=snapshot.workers_note,
            items=None
            if snapshot.worker_list is None
            else [WorkerOut.of(w, snapshot.messaging_system) for w in snapshot.worker_list],
            read_at=snapshot.read_at,
            brokers=_parts(snapshot),
        )


class HealthOut(BaseModel):
    """The health verdict and what it is based on."""

    status: Literal["healthy", "degraded", "unhealthy"]
    broker: str
    messaging_system: str | None = Field(default=None, description="The task library, once read.")
    workers: int | None
    workers_note: str | None = None
    queues: list[QueueOut]
    total_pending: int
    reasons: list[str]
    brokers: list[BrokerPartOut] | None = Field(
        default=None, description="Each broker read and whether it answered, when there are several."
    )


class DeadLetterOut(BaseModel):
    """A message in a dead-letter queue."""

    message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    retries: int
    traceback: str | None
    died_at: float | None = Field(description="When it was dead-lettered, Unix seconds.")
    enqueued_at: float | None = Field(description="The message's timestamp, Unix seconds.")

    @classmethod
    def of(cls, letter: DeadLetter) -> DeadLetterOut:
        return cls(
            message_id=letter.message_id,
            queue=letter.queue,
            actor=letter.actor,
            args=list(letter.args),
            kwargs=dict(letter.kwargs),
            options=dict(letter.options),
            retries=letter.retries,
            traceback=letter.traceback,
            died_at=letter.died_at,
            enqueued_at=letter.enqueued_at,
        )


class DeadLetterPageOut(BaseModel):
    """A page of dead letters: newest first on Redis, oldest first on RabbitMQ."""

    items: list[DeadLetterOut]
    total: int
    offset: int
    limit: int


class RequeueIds(BaseModel):
    """Requeue the dead letters with these ids."""

    model_config = ConfigDict(strict=True, extra="forbid")

    message_ids: list[str] = Field(min_length=1, max_length=MAX_IDS_PER_REQUEST)
    all: Literal[False] = False
    reset_retries: bool = Field(default=False, description="Set the retry count back to 0.")


class RequeueAll(BaseModel):
    """Requeue every dead letter of the queue."""

    model_config = ConfigDict(strict=True, extra="forbid")

    all: Literal[True]
    reset_retries: bool = Field(default=False, description="Set the retry count back to 0.")


#: Which dead letters to move back to their queue: some ids, or ``{"all": true}``.
RequeueIn = RequeueIds | RequeueAll


class DeleteIn(BaseModel):
    """Which dead letters to delete."""

    model_config = ConfigDict(strict=True, extra="forbid")

    message_ids: list[str] = Field(min_length=1, max_length=MAX_IDS_PER_REQUEST)


class RequeuedOut(BaseModel):
    requeued: int


class DeletedOut(BaseModel):
    deleted: int


class PurgedOut(BaseModel):
    purged: int
