"""The one interface every broker layout implements: read queue state, act on dead letters.

An implementation reads a broker the way the task library lays it out (Dramatiq on Redis,
Dramatiq on RabbitMQ, Celery on Redis, Celery on RabbitMQ) and never changes anything except
through the dead-letter actions. Reads are bounded in time and never block the broker.

The counts mean the same for both libraries: ``ready`` waits for a worker, ``delayed`` waits for
its time (Dramatiq's delay queue; Celery's countdown/eta tasks, which workers hold
unacknowledged until they are due), ``in_flight`` was taken by a worker and is not acknowledged
yet (for Celery: reserved, that is prefetched, or executing with ``acks_late``), ``dead`` sits in
a dead-letter queue. The optional fields are what only some layouts can tell.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasklens import semconv

__all__ = [
    "AmbiguousQueue",
    "BrokerError",
    "BrokerInspector",
    "BrokerPart",
    "BrokerSnapshot",
    "BrokerUnavailable",
    "DeadLetter",
    "DeadLetterPage",
    "MessageNotFound",
    "NoDeadLetterQueue",
    "QueueNotFound",
    "QueueStats",
    "ReadOnlyInspector",
    "WorkerInfo",
]


class BrokerError(Exception):
    """Base class of the errors raised by broker inspectors. Messages never carry credentials."""


class BrokerUnavailable(BrokerError):
    """The broker did not answer (connection refused, timeout, authentication failure)."""


class QueueNotFound(BrokerError):
    """The queue named does not exist on the broker."""


class NoDeadLetterQueue(QueueNotFound):
    """The queue has no dead-letter queue (Celery on Redis never has one)."""


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
      priorities(dict[int, int]|None): Ready messages per priority step (Celery on Redis, whose
        steps are sibling lists); their sum is ``ready``. ``None`` where the layout has none.
      oldest_unacked_age(float|None): Seconds since a worker took the oldest message of the
        queue it has not acknowledged (Celery on Redis), ``None`` when none is or it is unknown.
      visibility_timeout(float|None): Unacknowledged messages older than this are delivered
        again, in seconds (Celery on Redis).
      messaging_system(str|None): The task library whose layout the queue was read from, when a
        snapshot holds several brokers' queues; ``None`` means the snapshot's ``messaging_system``.
    """

    name: str
    ready: int | None
    delayed: int | None
    in_flight: int | None
    dead: int | None
    oldest_age: float | None
    consumers: int | None = None
    priorities: dict[int, int] | None = None
    oldest_unacked_age: float | None = None
    visibility_timeout: float | None = None
    messaging_system: str | None = None

    @property
    def pending(self) -> int:
        """Ready plus delayed messages, counting unknowns as zero."""
        return (self.ready or 0) + (self.delayed or 0)


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker, as its heartbeats (Celery) or announcements (Dramatiq on Redis) describe it.

    Parameters:
      hostname(str): The full node name, ``name@host`` (Dramatiq: ``pid@host``, one per worker
        process): two workers on one host are two.
      last_heartbeat(float): When its last heartbeat was received, Unix seconds (the monitor's
        clock, so clock skew between machines does not matter).
      expires_at(float): When it counts as gone unless it heart-beats again, Unix seconds.
      freq(float): Its heartbeat interval, in seconds.
      active(int|None): Tasks it is executing now.
      processed(int|None): Tasks it has executed since it started.
      pool(str|None): Its pool (prefork, threads, solo, eventlet, gevent), once known.
      concurrency(int|None): Its pool's size, once known.
      pid(int|None): Its main process id.
      software(str|None): Its task library and version, e.g. ``py-celery 5.5.0``.
      queues(tuple[str, ...]|None): The queues it consumes, where it tells (Dramatiq).
      messaging_system(str|None): The task library of the broker it was seen on, when a snapshot
        holds several brokers' workers.
    """

    hostname: str
    last_heartbeat: float
    expires_at: float
    freq: float
    active: int | None = None
    processed: int | None = None
    pool: str | None = None
    concurrency: int | None = None
    pid: int | None = None
    software: str | None = None
    queues: tuple[str, ...] | None = None
    messaging_system: str | None = None


@dataclass(frozen=True)
class BrokerPart:
    """How one of several brokers read into one snapshot fared (``CompositeInspector``).

    Parameters:
      broker(str): The broker URL without credentials.
      messaging_system(str|None): Its task library, ``None`` while it is unknown (not detected yet
        because the broker never answered).
      up(bool): Whether it answered.
      error(str|None): Why it did not, without credentials.
      workers(int|None): Its live workers, ``None`` when unknown or down.
      workers_note(str|None): What limits its worker count.
    """

    broker: str
    messaging_system: str | None
    up: bool
    error: str | None = None
    workers: int | None = None
    workers_note: str | None = None


@dataclass(frozen=True)
class BrokerSnapshot:
    """One read of the whole broker.

    Parameters:
      queues(list[QueueStats]): Every queue found, sorted by name.
      workers(int|None): Live worker processes (announcements or heartbeats on Redis) or
        consumers (RabbitMQ);
        ``None`` when they cannot be known (``workers_note`` says why).
      read_at(float): When the read finished, Unix seconds.
      duration(float): How long the read took, in seconds.
      messaging_system(str): The task library whose layout was read (``dramatiq``, ``celery``).
      worker_list(list[WorkerInfo]|None): Each live worker, where the layout describes them.
      workers_note(str|None): What limits the worker count, e.g. ``events disabled: workers
        unknown``.
      brokers(list[BrokerPart]|None): Each broker read, when the snapshot holds several
        (``CompositeInspector``): the queues of one that did not answer are absent, and its part
        says so. ``None`` for one broker.
    """

    queues: list[QueueStats]
    workers: int | None
    read_at: float
    duration: float
    messaging_system: str = semconv.MESSAGING_SYSTEM_DRAMATIQ
    worker_list: list[WorkerInfo] | None = None
    workers_note: str | None = None
    brokers: list[BrokerPart] | None = None

    def queue(self, name: str, messaging_system: str | None = None) -> QueueStats:
        """The queue called ``name`` (of ``messaging_system``'s layout, when given).

        Raises:
          QueueNotFound: when there is none.
          AmbiguousQueue: when several libraries have a queue of that name and none is chosen.
        """
        found = [
            stats
            for stats in self.queues
            if stats.name == name and messaging_system in (None, self.system_of(stats))
        ]
        if not found:
            suffix = f" in {messaging_system}" if messaging_system else ""
            raise QueueNotFound(f"queue {name!r} not found{suffix}")
        systems = sorted({self.system_of(stats) for stats in found})
        if len(systems) > 1:
            raise AmbiguousQueue(name, systems)
        return found[0]

    def system_of(self, stats: QueueStats) -> str:
        """The task library whose layout ``stats`` was read from."""
        return stats.messaging_system or self.messaging_system


class AmbiguousQueue(BrokerError):
    """Several task libraries (or several brokers of one library) have a queue of that name: the
    caller must choose one.

    Parameters:
      queue(str): The queue's name.
      choices(list[str]): The libraries that have it, or (``by="broker"``) the redacted URLs of
        the brokers that have it.
      by(str): What chooses among them: ``messaging_system`` (a library) or ``broker``.
    """

    def __init__(self, queue: str, choices: Sequence[str], *, by: str = "messaging_system") -> None:
        self.queue = queue
        self.choices = list(choices)
        self.by = by
        where = "in" if by == "messaging_system" else "on"
        super().__init__(
            f"queue {queue!r} exists {where} {' and '.join(self.choices)}: say which ({by}="
            f"{'|'.join(self.choices)})"
        )


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
    #: The task library whose layout it reads.
    messaging_system: str = semconv.MESSAGING_SYSTEM_DRAMATIQ

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

    def for_queue(
        self, queue: str, messaging_system: str | None = None, broker: str | None = None
    ) -> BrokerInspector:
        """The inspector holding ``queue``'s dead letters: this one, unless it reads several
        brokers (``CompositeInspector``), which chooses by ``messaging_system`` when two
        libraries have a queue of that name, and by ``broker`` when two brokers of one library
        have it.

        Parameters:
          queue(str): The queue's name.
          messaging_system(str|None): ``dramatiq`` or ``celery``, when it matters.
          broker(str|None): The broker's redacted URL or its index (from 0), when it matters.

        Raises:
          QueueNotFound: when ``messaging_system`` is not this broker's library, or ``broker``
            does not name it.
        """
        if messaging_system is not None and messaging_system != self.messaging_system:
            raise QueueNotFound(
                f"queue {queue!r} not found in {messaging_system}: the broker holds "
                f"{self.messaging_system}'s queues"
            )
        if broker is not None and broker not in ("0", self.redacted_url):
            raise QueueNotFound(f"no broker {broker!r}: the only one is {self.redacted_url} (0)")
        return self

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> BrokerInspector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ReadOnlyInspector(BrokerInspector):
    """An inspector whose layout offers no dead-letter browsing or actions: each of those calls
    raises ``NoDeadLetterQueue`` with the reason ``no_dead_letters`` gives."""

    @abc.abstractmethod
    def no_dead_letters(self, queue: str) -> NoDeadLetterQueue:
        """The error saying why ``queue``'s dead letters cannot be reached here."""

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        raise self.no_dead_letters(queue)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        raise self.no_dead_letters(queue)

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        raise self.no_dead_letters(queue)

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        raise self.no_dead_letters(queue)

    def purge_dead(self, queue: str) -> int:
        raise self.no_dead_letters(queue)
