"""Celery on kombu's in-memory transport (``memory://``), inspected from the same process.

The memory transport keeps each queue in a ``queue.Queue`` of a dict shared by every channel of
the process (``kombu.transport.memory.Channel.queues``), so only code in the process that runs
Celery can read it: ``tasklens demo`` without Redis, and tests. What the queues hold ready is
their size, read without taking anything. What a worker holds unacknowledged (countdown/eta
tasks, prefetched ones) stays in that worker's channel, and the transport carries no heartbeats
a reader can list: delayed, in flight and the workers are unknown (``None``), with a note
saying why. The transport keeps no dead letters either.
"""

from __future__ import annotations

import time

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot, NoDeadLetterQueue, QueueStats, ReadOnlyInspector

__all__ = ["MEMORY_URL", "MEMORY_WORKERS_NOTE", "CeleryMemoryInspector"]

#: What the in-memory transport's URL reads as.
MEMORY_URL = "memory://"
#: Why the workers are unknown on the in-memory transport.
MEMORY_WORKERS_NOTE = (
    "Celery on the in-memory transport: its workers, and the tasks they hold unacknowledged, "
    "cannot be read from the transport; ready counts are the in-process queues' sizes"
)
#: Parts of the names of Celery's own queues (events, remote control), which are not task queues.
INTERNAL_QUEUE_MARKERS = ("celeryev.", ".pidbox")


class CeleryMemoryInspector(ReadOnlyInspector):
    """Reads the ready counts of the Celery queues on kombu's in-memory transport of this process.

    Parameters:
      queues(tuple[str, ...]): Queues to report even before the transport has made them (the
        app's task queues); any other task queue the transport holds is reported too.
    """

    url = MEMORY_URL
    messaging_system = semconv.MESSAGING_SYSTEM_CELERY

    def __init__(self, queues: tuple[str, ...] = ()) -> None:
        self.queues = queues

    @property
    def redacted_url(self) -> str:
        return MEMORY_URL

    def snapshot(self) -> BrokerSnapshot:
        from kombu.transport.memory import Channel

        started = time.perf_counter()
        held = dict(Channel.queues)
        names = sorted({*self.queues, *(name for name in held if not _internal(name))})
        stats = [
            QueueStats(
                name,
                ready=held[name].qsize() if name in held else 0,
                delayed=None,
                in_flight=None,
                dead=None,
                oldest_age=None,
                messaging_system=semconv.MESSAGING_SYSTEM_CELERY,
            )
            for name in names
        ]
        return BrokerSnapshot(
            stats,
            None,
            time.time(),
            time.perf_counter() - started,
            messaging_system=semconv.MESSAGING_SYSTEM_CELERY,
            workers_note=MEMORY_WORKERS_NOTE,
        )

    def no_dead_letters(self, queue: str) -> NoDeadLetterQueue:
        return NoDeadLetterQueue(
            f"queue {queue!r} has no dead-letter queue: Celery's in-memory transport keeps none"
        )


def _internal(name: str) -> bool:
    return any(marker in name for marker in INTERNAL_QUEUE_MARKERS)
