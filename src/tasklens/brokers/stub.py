"""Dramatiq's in-process ``StubBroker``, inspected from the same process.

The stub broker keeps its queues in memory, so only code in the process that owns it can read
them: ``tasklens demo`` without Redis, and tests. Ready and delayed counts come from the
in-memory queues (``q`` and ``q.DQ``), in flight from the messages taken but not yet
acknowledged, dead letters from the broker's ``dead_letters_by_queue``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from tasklens.brokers.base import (
    BrokerInspector,
    BrokerSnapshot,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
    QueueStats,
)

__all__ = ["StubInspector"]

#: What the stub broker's "URL" reads as.
STUB_URL = "stub://in-process"

_DELAY_SUFFIX = ".DQ"


class StubInspector(BrokerInspector):
    """Reads and acts on a ``dramatiq.brokers.stub.StubBroker`` of this process.

    Parameters:
      broker(StubBroker): The broker, already holding its queues.
      workers(int|None): What to report as live workers (the stub has no heartbeats).
    """

    url = STUB_URL

    def __init__(self, broker: Any, *, workers: int | None = None) -> None:
        self.broker = broker
        self.workers = workers
        self._lock = threading.Lock()

    @property
    def redacted_url(self) -> str:
        return STUB_URL

    def _names(self) -> list[str]:
        names = {
            name[: -len(_DELAY_SUFFIX)] if name.endswith(_DELAY_SUFFIX) else name
            for name in self.broker.queues
        }
        return sorted(names)

    def snapshot(self) -> BrokerSnapshot:
        started = time.perf_counter()
        queues = [self._stats(name) for name in self._names()]
        return BrokerSnapshot(queues, self.workers, time.time(), time.perf_counter() - started)

    def _stats(self, name: str) -> QueueStats:
        ready_queue = self.broker.queues.get(name)
        delay_queue = self.broker.queues.get(name + _DELAY_SUFFIX)
        ready = ready_queue.qsize() if ready_queue is not None else 0
        delayed = delay_queue.qsize() if delay_queue is not None else 0
        taken = sum(q.unfinished_tasks - q.qsize() for q in (ready_queue, delay_queue) if q is not None)
        dead = len(self.broker.dead_letters_by_queue.get(name, ())) + len(
            self.broker.dead_letters_by_queue.get(name + _DELAY_SUFFIX, ())
        )
        # The stub keeps encoded messages in a queue.Queue: its head cannot be read without
        # taking it, so the oldest age is only known when nothing is ready.
        return QueueStats(name, ready, delayed, max(0, taken), dead, 0.0 if ready == 0 else None)

    def _dead(self, queue: str) -> list[Any]:
        if queue not in self._names():
            raise QueueNotFound(f"queue {queue!r} not found on {STUB_URL}")
        return [
            *self.broker.dead_letters_by_queue.get(queue, ()),
            *self.broker.dead_letters_by_queue.get(queue + _DELAY_SUFFIX, ()),
        ]

    @staticmethod
    def _letter(queue: str, message: Any) -> DeadLetter:
        return DeadLetter(
            message_id=message.message_id,
            queue=queue,
            actor=message.actor_name,
            args=list(message.args),
            kwargs=dict(message.kwargs),
            options=dict(message.options),
            died_at=None,
            enqueued_at=message.message_timestamp / 1000,
        )

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        if offset < 0 or limit < 1:
            raise ValueError("offset must be >= 0 and limit >= 1")
        letters = list(reversed(self._dead(queue)))
        items = [self._letter(queue, message) for message in letters[offset : offset + limit]]
        return DeadLetterPage(items, len(letters), offset, limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        for message in self._dead(queue):
            if message.message_id == message_id:
                return self._letter(queue, message)
        raise MessageNotFound(f"no dead letter {message_id!r} in {queue!r}")

    def _take(self, queue: str, message_ids: Sequence[str] | None) -> list[Any]:
        """Remove and return the dead letters named (all with None); unknown ids change nothing."""
        with self._lock:
            dead = self._dead(queue)
            wanted = None if message_ids is None else set(message_ids)
            if wanted is not None:
                missing = wanted - {message.message_id for message in dead}
                if missing:
                    raise MessageNotFound(f"no dead letter {sorted(missing)[0]!r} in {queue!r}")
            taken = [m for m in dead if wanted is None or m.message_id in wanted]
            taken_ids = {id(m) for m in taken}
            for name in (queue, queue + _DELAY_SUFFIX):
                kept = [m for m in self.broker.dead_letters_by_queue.get(name, ()) if id(m) not in taken_ids]
                if name in self.broker.dead_letters_by_queue:
                    self.broker.dead_letters_by_queue[name][:] = kept
            return taken

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        taken = self._take(queue, message_ids)
        for done, message in enumerate(taken, start=1):
            options = {k: v for k, v in message.options.items() if k != "eta"}
            if reset_retries:
                options.pop("retries", None)
            self.broker.enqueue(message._replace(queue_name=queue, options=options))
            if progress is not None:
                progress(done, len(taken))
        return len(taken)

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        return len(self._take(queue, message_ids))

    def purge_dead(self, queue: str) -> int:
        return len(self._take(queue, None))
