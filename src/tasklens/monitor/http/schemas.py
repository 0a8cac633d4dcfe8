"""The JSON bodies of the monitor's REST API, as documented in ``/openapi.json``.

Counts a broker cannot tell are ``null``, never 0.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasklens.brokers.base import BrokerSnapshot, DeadLetter, QueueStats, WorkerInfo

__all__ = [
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
    def of(cls, stats: QueueStats) -> QueueOut:
        return cls(
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


class QueuesOut(BaseModel):
    """Every queue of the broker."""

    broker: str
    messaging_system: str = Field(default="dramatiq", description="The task library: dramatiq or celery.")
    workers: int | None
    workers_note: str | None = Field(default=None, description="Why workers is null, when it is.")
    read_at: float = Field(description="When the broker was read, Unix seconds.")
    queues: list[QueueOut]

    @classmethod
    def of(cls, snapshot: BrokerSnapshot, broker: str) -> QueuesOut:
        return cls(
            broker=broker,
            messaging_system=snapshot.messaging_system,
            workers=snapshot.workers,
            workers_note=snapshot.workers_note,
            read_at=snapshot.read_at,
            queues=[QueueOut.of(stats) for stats in snapshot.queues],
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

    @classmethod
    def of(cls, worker: WorkerInfo) -> WorkerOut:
        return cls(
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
        )


class WorkersOut(BaseModel):
    """Live workers: heartbeats (Dramatiq on Redis, Celery) or consumers (Dramatiq on RabbitMQ)."""

    broker: str
    messaging_system: str = "dramatiq"
    workers: int | None
    workers_note: str | None = Field(default=None, description="Why workers is null, when it is.")
    items: list[WorkerOut] | None = Field(default=None, description="Each worker, where the layout tells.")
    read_at: float

    @classmethod
    def of(cls, snapshot: BrokerSnapshot, broker: str) -> WorkersOut:
        return cls(
            broker=broker,
            messaging_system=snapshot.messaging_system,
            workers=snapshot.workers,
            workers_note=snapshot.workers_note,
            items=None if snapshot.worker_list is None else [WorkerOut.of(w) for w in snapshot.worker_list],
            read_at=snapshot.read_at,
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
