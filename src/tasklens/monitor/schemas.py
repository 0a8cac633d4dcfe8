"""The JSON bodies of the monitor's REST API, as documented in ``/openapi.json``.

Counts a broker cannot tell are ``null``, never 0.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasklens.brokers.base import DeadLetter, QueueStats

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
        )


class QueuesOut(BaseModel):
    """Every queue of the broker."""

    broker: str
    workers: int | None
    read_at: float = Field(description="When the broker was read, Unix seconds.")
    queues: list[QueueOut]


class WorkersOut(BaseModel):
    """Live workers (Redis heartbeats) or consumers (RabbitMQ)."""

    broker: str
    workers: int | None
    read_at: float


class HealthOut(BaseModel):
    """The health verdict and what it is based on."""

    status: Literal["healthy", "degraded", "unhealthy"]
    broker: str
    workers: int | None
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
