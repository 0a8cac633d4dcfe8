"""An in-memory BrokerInspector: queue counts and dead letters the tests set directly."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from tasklens.brokers.base import (
    BrokerInspector,
    BrokerSnapshot,
    BrokerUnavailable,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
    QueueStats,
    WorkerInfo,
)

#: A URL with a password, so that tests can check it is never shown.
FAKE_URL = "redis://:s3cret-pw@fake-broker:6379/0"


class FakeInspector(BrokerInspector):
    """Counts and dead letters in memory.

    ``down = True`` makes every call raise BrokerUnavailable; ``hang`` (an Event that is clear)
    makes snapshot() block until it is set.
    """

    def __init__(self, url: str = FAKE_URL) -> None:
        self.url = url
        self.queues: dict[str, QueueStats] = {}
        self.dead: dict[str, list[DeadLetter]] = {}
        self.requeued: dict[str, list[DeadLetter]] = {}
        self.workers: int | None = 2
        self.messaging_system = "dramatiq"
        self.worker_list: list[WorkerInfo] | None = None
        self.workers_note: str | None = None
        self.down = False
        self.hang: threading.Event | None = None
        self.snapshot_calls = 0
        #: Raised by dead_letters(): a bug in an inspector, as the monitor would meet it.
        self.bug: Exception | None = None
        self._lock = threading.Lock()

    @property
    def redacted_url(self) -> str:
        return "redis://:***@fake-broker:6379/0"

    def add_queue(self, stats: QueueStats) -> None:
        self.queues[stats.name] = stats
        self.dead.setdefault(stats.name, [])

    def add_dead(self, queue: str, count: int, *, actor: str = "fail") -> list[DeadLetter]:
        letters = [
            DeadLetter(
                message_id=f"{queue}-m{i}",
                queue=queue,
                actor=actor,
                args=[i],
                kwargs={"key": "value"},
                options={"retries": 3, "traceback": "Traceback...\nValueError: boom"},
                died_at=1_700_000_000.0 + i,
                enqueued_at=1_699_999_000.0 + i,
            )
            for i in range(count)
        ]
        self.dead.setdefault(queue, []).extend(letters)
        return letters

    def snapshot(self) -> BrokerSnapshot:
        self.snapshot_calls += 1
        if self.hang is not None:
            self.hang.wait(timeout=30)
        self._check_up()
        queues = [
            replace(stats, dead=len(self.dead[stats.name])) if stats.dead is not None else stats
            for stats in sorted(self.queues.values(), key=lambda stats: stats.name)
        ]
        return BrokerSnapshot(
            queues=queues,
            workers=self.workers,
            read_at=time.time(),
            duration=0.001,
            messaging_system=self.messaging_system,
            worker_list=self.worker_list,
            workers_note=self.workers_note,
        )

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        if self.bug is not None:
            raise self.bug
        letters = self._letters(queue)
        newest_first = sorted(letters, key=lambda letter: letter.died_at or 0.0, reverse=True)
        return DeadLetterPage(newest_first[offset : offset + limit], len(letters), offset, limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        for letter in self._letters(queue):
            if letter.message_id == message_id:
                return letter
        raise MessageNotFound(f"no dead letter {message_id!r} in queue {queue!r}")

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        letters = self._letters(queue)
        if message_ids is not None:
            self._check_dead(letters, message_ids)
        chosen = [m for m in letters if message_ids is None or m.message_id in message_ids]
        for done, letter in enumerate(chosen, 1):
            letters.remove(letter)
            options = {**letter.options, "retries": 0} if reset_retries else letter.options
            self.requeued.setdefault(queue, []).append(
                DeadLetter(letter.message_id, queue, letter.actor, letter.args, letter.kwargs, options)
            )
            if progress is not None:
                progress(done, len(chosen))
        return len(chosen)

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        letters = self._letters(queue)
        self._check_dead(letters, message_ids)
        chosen = [m for m in letters if m.message_id in message_ids]
        for letter in chosen:
            letters.remove(letter)
        return len(chosen)

    def purge_dead(self, queue: str) -> int:
        letters = self._letters(queue)
        count = len(letters)
        letters.clear()
        return count

    def _letters(self, queue: str) -> list[DeadLetter]:
        self._check_up()
        if queue not in self.dead:
            raise QueueNotFound(f"queue {queue!r} not found")
        return self.dead[queue]

    def _check_dead(self, letters: list[DeadLetter], message_ids: Sequence[str]) -> None:
        missing = set(message_ids) - {letter.message_id for letter in letters}
        if missing:
            raise MessageNotFound(f"not dead letters: {', '.join(sorted(missing))}")

    def _check_up(self) -> None:
        if self.down:
            raise BrokerUnavailable(f"broker {self.redacted_url} refused the connection")
