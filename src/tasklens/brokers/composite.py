"""Several brokers read as one: Dramatiq's and Celery's queues and workers side by side.

``CompositeInspector`` holds one inspector per broker (each opened by ``open_broker`` with its own
library, detected or given) and reads them all at once, each within the timeout. Its snapshot
holds every queue, each with the library whose layout it came from
(``QueueStats.messaging_system``), sorted by name and then library; the workers known summed;
each broker's Celery workers listed; and one ``BrokerPart`` per broker saying whether it
answered. A broker that does not answer leaves the others' numbers in place: the read fails
(``BrokerUnavailable``) only when none answers.

Dead-letter reads and actions go to the broker that has the queue. When two libraries have a
queue of the same name, ``for_queue(name, messaging_system)`` chooses; when two brokers of one
library have it, ``for_queue(name, broker=...)`` (a redacted URL or an index); without a choice it
raises ``AmbiguousQueue`` naming them.

Example:

  >>> from tasklens.brokers import open_broker
  >>> from tasklens.brokers.composite import CompositeInspector, CompositeMember
  >>> members = [
  ...     CompositeMember("redis://127.0.0.1:6379/0", lambda: open_broker("redis://127.0.0.1:6379/0",
  ...         library="dramatiq"), library="dramatiq"),
  ...     CompositeMember("redis://127.0.0.1:6379/1", lambda: open_broker("redis://127.0.0.1:6379/1",
  ...         library="celery"), library="celery"),
  ... ]
  >>> with CompositeInspector(members, timeout=5.0) as both:
  ...     snapshot = both.snapshot()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace

from tasklens.brokers.base import (
    AmbiguousQueue,
    BrokerError,
    BrokerInspector,
    BrokerPart,
    BrokerSnapshot,
    BrokerUnavailable,
    DeadLetter,
    DeadLetterPage,
    Progress,
    QueueNotFound,
    QueueStats,
    WorkerInfo,
)
from tasklens.brokers.url import redact_url

__all__ = ["CompositeInspector", "CompositeMember"]

logger = logging.getLogger(__name__)


class CompositeMember:
    """One broker of a ``CompositeInspector``: opened when first needed, and opened afresh after
    it stops answering, whatever state its old connection was left in.

    Parameters:
      url(str): The broker URL (only its redacted form is shown).
      open_inspector(Callable[[], BrokerInspector]): Opens its inspector (``open_broker``).
      library(str|None): Its task library when it is given; else learnt from its first read.
    """

    def __init__(
        self, url: str, open_inspector: Callable[[], BrokerInspector], *, library: str | None = None
    ):
        self.url = url
        self.library = library
        self._open_inspector = open_inspector
        self._inspector: BrokerInspector | None = None
        self.lock = threading.Lock()
        #: The read in progress, when one has not finished yet (it hung past the deadline).
        self.pending: Future[BrokerSnapshot] | None = None

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @property
    def label(self) -> str:
        """How errors name it: its library (once known) and URL."""
        return f"{self.library} at {self.redacted_url}" if self.library else self.redacted_url

    def inspector(self) -> BrokerInspector:
        """Its inspector (opened now if needed); hold ``lock`` while using it."""
        if self._inspector is None:
            self._inspector = self._open_inspector()
        return self._inspector

    def snapshot(self) -> BrokerSnapshot:
        with self.lock:
            try:
                snapshot = self.inspector().snapshot()
            except BrokerUnavailable:
                self.discard()
                raise
        self.library = snapshot.messaging_system
        return snapshot

    def discard(self) -> None:
        inspector, self._inspector = self._inspector, None
        if inspector is None:
            return
        try:
            inspector.close()
        except Exception:  # closing a dead connection may fail; it is being dropped anyway
            logger.debug("Closing the inspector of %s failed.", self.redacted_url, exc_info=True)


class CompositeInspector(BrokerInspector):
    """Reads several brokers as one; see the module's documentation.

    Parameters:
      members(Sequence[CompositeMember]): The brokers, in the order they were given.
      timeout(float): Longest one broker's read may take, in seconds; one that takes longer is
        reported down, and is not read again until that read ends.
    """

    def __init__(self, members: Sequence[CompositeMember], *, timeout: float) -> None:
        if not members:
            raise ValueError("a composite inspector needs at least one broker")
        self.members = list(members)
        self.url = " ".join(member.url for member in self.members)
        self._timeout = timeout
        self._executor = ThreadPoolExecutor(
            max_workers=len(self.members), thread_name_prefix="tasklens-broker"
        )

    @property
    def redacted_url(self) -> str:
        return ", ".join(member.redacted_url for member in self.members)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        for member in self.members:
            if member.lock.acquire(timeout=self._timeout):
                try:
                    member.discard()
                finally:
                    member.lock.release()

    # -- Reading ----------------------------------------------------------------------------------

    def snapshot(self) -> BrokerSnapshot:
        started = time.monotonic()
        futures = [self._submit(member) for member in self.members]
        wait([f for f in futures if f is not None], timeout=self._timeout)
        parts: list[BrokerPart] = []
        read: list[BrokerSnapshot] = []
        for member, future in zip(self.members, futures, strict=True):
            snapshot, error = self._outcome(member, future)
            if snapshot is None:
                parts.append(BrokerPart(member.redacted_url, member.library, up=False, error=error))
                continue
            read.append(snapshot)
            parts.append(
                BrokerPart(
                    member.redacted_url,
                    snapshot.messaging_system,
                    up=True,
                    workers=snapshot.workers,
                    workers_note=snapshot.workers_note,
                )
            )
        if not read:
            raise BrokerUnavailable(
                "no broker answered: " + "; ".join(f"{part.broker}: {part.error}" for part in parts)
            )
        return _merged(read, parts, duration=time.monotonic() - started)

    def _submit(self, member: CompositeMember) -> Future[BrokerSnapshot] | None:
        if member.pending is not None and not member.pending.done():
            return None  # still hung in an earlier read: not read twice at once
        member.pending = self._executor.submit(member.snapshot)
        return member.pending

    def _outcome(
        self, member: CompositeMember, future: Future[BrokerSnapshot] | None
    ) -> tuple[BrokerSnapshot | None, str | None]:
        if future is None or not future.done():
            return None, f"{member.redacted_url} did not answer within {self._timeout:g} s"
        member.pending = None
        try:
            return future.result(), None
        except BrokerError as exc:
            return None, str(exc)
        except Exception as exc:
            logger.exception("Reading the broker %s failed.", member.redacted_url)
            return None, f"reading {member.redacted_url} failed: {type(exc).__name__}"

    # -- Dead letters, routed to the broker that has the queue ---------------------------------------

    def for_queue(
        self, queue: str, messaging_system: str | None = None, broker: str | None = None
    ) -> BrokerInspector:
        """The inspector of the broker holding ``queue`` (of ``messaging_system``'s layout, on
        ``broker`` when given: its redacted URL or its index, from 0, in the order given).

        Raises:
          QueueNotFound: when no broker has it, or ``broker`` names none of them.
          AmbiguousQueue: when brokers of several libraries have it and none is chosen
            (``choices`` the libraries), or several brokers of the chosen library have it and
            none is chosen (``choices`` their redacted URLs).
          BrokerUnavailable: when none has it and a broker that did not answer might.
        """
        holders: list[CompositeMember] = []
        down: list[str] = []
        for member in self._chosen(broker):
            if messaging_system is not None and member.library not in (None, messaging_system):
                continue
            try:
                snapshot = member.snapshot()
            except BrokerError as exc:
                down.append(f"{member.label}: {exc}")
                continue
            if messaging_system is not None and snapshot.messaging_system != messaging_system:
                continue
            if any(stats.name == queue for stats in snapshot.queues):
                holders.append(member)
        if not holders:
            if down:
                raise BrokerUnavailable(
                    f"queue {queue!r} not found on the brokers that answered ({'; '.join(down)})"
                )
            suffix = f" in {messaging_system}" if messaging_system else ""
            raise QueueNotFound(f"queue {queue!r} not found{suffix}")
        if len(holders) > 1:
            systems = sorted({member.library or "" for member in holders})
            if len(systems) > 1:
                raise AmbiguousQueue(queue, systems)
            raise AmbiguousQueue(queue, [member.redacted_url for member in holders], by="broker")
        return _Routed(holders[0], self._timeout)

    def _chosen(self, broker: str | None) -> list[CompositeMember]:
        """The members ``broker`` names (all of them without it). Raises QueueNotFound."""
        if broker is None:
            return self.members
        if broker.isdigit():
            index = int(broker)
            if index < len(self.members):
                return [self.members[index]]
        else:
            named = [member for member in self.members if member.redacted_url == broker]
            if named:
                return named
        listed = ", ".join(f"{i}: {member.redacted_url}" for i, member in enumerate(self.members))
        raise QueueNotFound(f"no broker {broker!r}: the brokers are {listed}")

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        return self.for_queue(queue).dead_letters(queue, offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        return self.for_queue(queue).dead_letter(queue, message_id)

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        return self.for_queue(queue).requeue_dead(
            queue, message_ids, reset_retries=reset_retries, progress=progress
        )

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        return self.for_queue(queue).delete_dead(queue, message_ids)

    def purge_dead(self, queue: str) -> int:
        return self.for_queue(queue).purge_dead(queue)


class _Routed(BrokerInspector):
    """One member's inspector, used under the member's lock (a read may run at the same time)."""

    def __init__(self, member: CompositeMember, timeout: float) -> None:
        self.url = member.url
        self._member = member
        self._timeout = timeout

    @property
    def redacted_url(self) -> str:
        return self._member.redacted_url

    def _call(self, use: Callable[[BrokerInspector], object]) -> object:
        if not self._member.lock.acquire(timeout=self._timeout):
            raise BrokerUnavailable(f"{self.redacted_url} is busy with a read that did not finish")
        try:
            return use(self._member.inspector())
        except BrokerUnavailable:
            self._member.discard()
            raise
        finally:
            self._member.lock.release()

    def snapshot(self) -> BrokerSnapshot:
        return self._member.snapshot()

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        page = self._call(lambda i: i.dead_letters(queue, offset=offset, limit=limit))
        assert isinstance(page, DeadLetterPage)
        return page

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        letter = self._call(lambda i: i.dead_letter(queue, message_id))
        assert isinstance(letter, DeadLetter)
        return letter

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        return int(
            self._call(  # type: ignore[call-overload]
                lambda i: i.requeue_dead(queue, message_ids, reset_retries=reset_retries, progress=progress)
            )
        )

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        return int(self._call(lambda i: i.delete_dead(queue, message_ids)))  # type: ignore[call-overload]

    def purge_dead(self, queue: str) -> int:
        return int(self._call(lambda i: i.purge_dead(queue)))  # type: ignore[call-overload]


def _merged(read: list[BrokerSnapshot], parts: list[BrokerPart], *, duration: float) -> BrokerSnapshot:
    queues: list[QueueStats] = []
    listed: list[WorkerInfo] = []
    any_list = False
    for snapshot in read:
        system = snapshot.messaging_system
        queues.extend(
            replace(stats, messaging_system=stats.messaging_system or system) for stats in snapshot.queues
        )
        if snapshot.worker_list is not None:
            any_list = True
            listed.extend(
                replace(w, messaging_system=w.messaging_system or system) for w in snapshot.worker_list
            )
    queues.sort(key=lambda stats: (stats.name, stats.messaging_system or ""))
    known = [snapshot.workers for snapshot in read if snapshot.workers is not None]
    several = len(parts) > 1
    notes = [
        f"{part.messaging_system} ({part.broker}): {part.workers_note}" if several else part.workers_note
        for part in parts
        if part.up and part.workers_note
    ]
    return BrokerSnapshot(
        queues=queues,
        workers=sum(known) if known else None,
        read_at=time.time(),
        duration=duration,
        messaging_system=read[0].messaging_system,
        worker_list=listed if any_list else None,
        workers_note="; ".join(notes) or None,
        brokers=parts,
    )
