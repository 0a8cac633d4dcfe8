"""The one interface every broker layout implements: read queue state, act on dead letters.

An implementation reads a broker the way the task library lays it out (Dramatiq on Redis,
Dramatiq on RabbitMQ; Celery's layouts later) and never changes anything except through the
dead-letter actions. Reads are bounded in time and never block the broker.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BrokerError",
    "BrokerInspector",
    "BrokerSnapshot",
    "BrokerUnavailable",
    "DeadLetter",
    "DeadLetterPage",
    "MessageNotFound",
    "QueueNotFound",
    "QueueStats",
]


class BrokerError(Exception):
    """Base class of the errors raised by broker inspectors. Messages never carry credentials."""


class BrokerUnavailable(BrokerError):
    """The broker did not answer (connection refused, timeout, authentication failure)."""


class QueueNotFound(BrokerError):
    """The queue named does not exist on the broker."""


class MessageNotFound(BrokerError):
    """No dead letter with that message id is in the queue."""


@dataclass(frozen=True)
class QueueStats:
    """Counts for one queue (by its canonical name, without ``.DQ``/``.XQ``).

    ``None`` means the broker cannot tell without consuming messages: unknown, not zero.

    Parameters:
      name(str): The queue's name.
      ready(int|None): Messages waiting to be delivered.
      delayed(int|None): Messages whose delivery time has not come yet.
      in_flight(int|None): Messages delivered to a worker and not acknowledged yet.
      dead(int|None): Messages in the dead-letter queue.
      oldest_age(float|None): Age of the oldest ready message, in seconds (0 when none is ready).
      consumers(int|None): Consumers attached to the queue, where the broker reports them.
    """

    name: str
    ready: int | None
    delayed: int | None
    in_flight: int | None
    dead: int | None
    oldest_age: float | None
    consumers: int | None = None

    @property
    def pending(self) -> int:
        """Ready plus delayed messages, counting unknowns as zero."""
        return (self.ready or 0) + (self.delayed or 0)


@dataclass(frozen=True)
class BrokerSnapshot:
    """One read of the whole broker.

    Parameters:
      queues(list[QueueStats]): Every queue found, sorted by name.
      workers(int|None): Live worker processes (Redis heartbeats) or consumers (RabbitMQ).
      read_at(float): When the read finished, Unix seconds.
      duration(float): How long the read took, in seconds.
    """

    queues: list[QueueStats]
    workers: int | None
    read_at: float
    duration: float

    def queue(self, name: str) -> QueueStats:
        for stats in self.queues:
            if stats.name == name:
                return stats
        raise QueueNotFound(f"queue {name!r} not found")


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue.

    Parameters:
      message_id(str): Dramatiq's message id.
      queue(str): The canonical queue name.
      actor(str): The actor the message was for.
      args(list): Positional arguments.
      kwargs(dict): Keyword arguments.
      options(dict): Message options (retries, traceback, otel_context, ...). Brokers keep a
        message as it was enqueued, so ``traceback`` is the previous attempt's: present when the
        message was retried before it died, absent when its first attempt was its last.
      died_at(float|None): When it was dead-lettered, Unix seconds, if known.
      enqueued_at(float|None): The message's timestamp, Unix seconds.
    """

    message_id: str
    queue: str
    actor: str
    args: list[Any]
    kwargs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    died_at: float | None = None
    enqueued_at: float | None = None

    @property
    def traceback(self) -> str | None:
        value = self.options.get("traceback")
        return value if isinstance(value, str) else None

    @property
    def retries(self) -> int:
        value = self.options.get("retries", 0)
        return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class DeadLetterPage:
    """A page of dead letters and the total in the queue.

    Newest first on Redis; in queue order (oldest first) on RabbitMQ, which can only read a
    queue from its head.
    """

    items: list[DeadLetter]
    total: int
    offset: int
    limit: int


#: Called with (done, total) while a long action runs.
Progress = Callable[[int, int], None]


class BrokerInspector(abc.ABC):
    """Reads one broker's queues and acts on its dead letters.

    Parameters:
      url(str): The broker URL; ``redacted_url`` is what may be shown.
    """

    url: str

    @property
    @abc.abstractmethod
    def redacted_url(self) -> str:
        """The broker URL with any password replaced by ``***``."""

    @abc.abstractmethod
    def snapshot(self) -> BrokerSnapshot:
        """Read every queue and the worker count. Raises BrokerUnavailable."""

    @abc.abstractmethod
    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        """A page of the queue's dead letters. Raises QueueNotFound."""

    @abc.abstractmethod
    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        """One dead letter. Raises MessageNotFound."""

    @abc.abstractmethod
    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Move dead letters (``None``: all of them) back to the queue; return how many moved.

        Raises MessageNotFound, changing nothing, when one of ``message_ids`` is not dead.
        """

    @abc.abstractmethod
    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete some dead letters; return how many were deleted.

        Raises MessageNotFound, changing nothing, when one of ``message_ids`` is not dead.
        """

    @abc.abstractmethod
    def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of the queue; return how many were deleted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> BrokerInspector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
