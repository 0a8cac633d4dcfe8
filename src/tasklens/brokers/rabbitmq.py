"""Dramatiq on RabbitMQ: queue state and dead-letter actions.

Dramatiq declares three durable queues per queue ``q``: ``q`` (ready), ``q.DQ`` (delayed: workers
hold these messages unacknowledged until their eta) and ``q.XQ`` (dead letters, which nothing
consumes). Over AMQP a passive ``queue_declare`` tells a queue's ready messages and consumers
and nothing else, so:

- ready, dead and consumers are exact;
- delayed is exact while no worker consumes ``q.DQ`` (else it holds some of them unacknowledged,
  and it is reported unknown: ``None``);
- in flight (unacknowledged) and the oldest message's age are unknown (``None``), never 0;
- with the management API (``management_url``) in flight and delayed come from its
  ``messages_unacknowledged`` and ``messages`` (which RabbitMQ refreshes every few seconds),
  and queues are discovered from it. AMQP alone cannot list queues: give their names or the app.

Dead letters are browsed with ``basic_get`` and given back with ``basic_nack(requeue=True)``, or by
RabbitMQ itself when the connection dies, so reading never loses one. Requeue is at-least-once:
each message is published to ``q`` with publisher confirms and only then acknowledged in
``q.XQ``; a crash between the two may duplicate that one message, never lose it.

Example:

  >>> inspector = RabbitmqInspector("amqp://guest:guest@127.0.0.1:5672/%2F", queues=["default"])
  >>> inspector.snapshot().queue("default").ready
  3
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tasklens.brokers.amqp import AmqpSession, QueueCounts
from tasklens.brokers.base import (
    BrokerError,
    BrokerInspector,
    BrokerSnapshot,
    BrokerUnavailable,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
    QueueStats,
)
from tasklens.brokers.payload import (
    DEAD_LETTER_QUEUE_SUFFIX,
    DELAY_QUEUE_SUFFIX,
    canonical_queue_name,
    dead_letter_from_payload,
    message_id_of,
    requeued_payload,
)

__all__ = ["DEFAULT_TIMEOUT", "NoQueuesKnown", "RabbitmqInspector"]

#: How long a connect, handshake or management call may take, in seconds.
DEFAULT_TIMEOUT = 5.0
#: The most dead letters one page may hold.
MAX_PAGE_SIZE = 1000
#: ``requeue_dead`` reports progress after this many messages.
PROGRESS_EVERY = 100
#: Persistent delivery, as Dramatiq publishes.
PERSISTENT = 2
#: Header RabbitMQ adds when it dead-letters a message (a list, most recent first).
X_DEATH_HEADER = "x-death"
#: Columns asked from the management API's queue list.
MANAGEMENT_COLUMNS = "name,messages,messages_ready,messages_unacknowledged,consumers"


class NoQueuesKnown(BrokerError):
    """RabbitMQ cannot list queues over AMQP and no other source of queue names was given."""


@dataclass(frozen=True)
class _Delivery:
    tag: int
    properties: pika.BasicProperties
    body: bytes

    @property
    def message_id(self) -> str | None:
        return message_id_of(self.body)


class RabbitmqInspector(BrokerInspector):
    """Reads Dramatiq's queues on RabbitMQ and acts on their dead letters.

    Parameters:
      url(str): ``amqp://`` or ``amqps://`` URL, with the virtual host as its path.
      queues(Sequence[str]): Canonical queue names to read.
      management_url(str|None): The management API's base URL (``http://user:pw@host:15672``);
        it adds in-flight counts and queue discovery. Without credentials, the AMQP URL's are used.
      timeout(float): Connect, handshake and management call timeout, in seconds.

    Raises:
      NoQueuesKnown: when neither ``queues`` nor ``management_url`` is given.
    """

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str] = (),
        management_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        self._session = AmqpSession(url, timeout=timeout, management_url=management_url)
        self._redacted_url = self._session.redacted_url
        self.queues = tuple(dict.fromkeys(canonical_queue_name(q) for q in queues))
        self.management_url = self._session.management_url
        self.timeout = timeout
        if not self.queues and not self.management_url:
            raise NoQueuesKnown(
                f"RabbitMQ at {self._redacted_url} cannot list its queues over AMQP: name them "
                "(--queue), give the app module (--app) or the management API URL "
                "(--rabbitmq-management-url)"
            )

    @property
    def redacted_url(self) -> str:
        return self._redacted_url

    def close(self) -> None:
        self._session.close()

    # -- Reading --------------------------------------------------------------------------------

    def snapshot(self) -> BrokerSnapshot:
        started = time.monotonic()
        if self.management_url:
            queues = self._read_management()
        else:
            with self._channel() as channel:
                queues = self._read_queues(channel, sorted(self.queues))
        workers = max((q.consumers or 0 for q in queues), default=0)
        return BrokerSnapshot(
            queues=queues, workers=workers, read_at=time.time(), duration=time.monotonic() - started
        )

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        """A page of dead letters in queue order (oldest first): RabbitMQ can only read from the head.

        Browsing holds the messages unacknowledged for the duration of the call and gives them
        all back, so a page far from the head costs reading every message before it.
        """
        if offset < 0:
            raise ValueError(f"offset must be 0 or more, not {offset}")
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
        with self._channel() as channel:
            total = self._require_dead_letter_queue(channel, queue)
            deliveries = self._browse(channel, queue, min(total, offset + limit))
            _give_back(channel)
        items = [_dead_letter(queue, delivery) for delivery in deliveries[offset : offset + limit]]
        return DeadLetterPage(items=items, total=total, offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        with self._channel() as channel:
            total = self._require_dead_letter_queue(channel, queue)
            deliveries = self._browse(channel, queue, total, until={message_id})
            _give_back(channel)
        for delivery in deliveries:
            if delivery.message_id == message_id:
                return _dead_letter(queue, delivery)
        raise MessageNotFound(f"no dead letter {message_id!r} in queue {queue!r}")

    # -- Dead-letter actions --------------------------------------------------------------------

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Publish dead letters to the queue (with confirms), then acknowledge them: at-least-once.

        Parameters:
          queue(str): The canonical queue name.
          message_ids(Sequence[str]|None): Dramatiq message ids, or ``None`` for all.
          reset_retries(bool): Set the retry count back to 0.
          progress(Progress|None): Called with (moved so far, total) every few messages.

        Raises:
          MessageNotFound: when an id is not in the dead-letter queue (nothing is moved).
        """
        with self._channel() as channel:
            total = self._require_dead_letter_queue(channel, queue)
            channel.confirm_delivery()
            if message_ids is None:
                return self._requeue_all(channel, queue, total, reset_retries, progress)
            chosen = self._select(channel, queue, total, message_ids)
            moved = 0
            for delivery in chosen:
                self._requeue_one(channel, queue, delivery, reset_retries)
                moved += 1
                if progress is not None and (moved % PROGRESS_EVERY == 0 or moved == len(chosen)):
                    progress(moved, len(chosen))
            _give_back(channel)
            return moved

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete some dead letters.

        Raises:
          MessageNotFound: when an id is not in the dead-letter queue (nothing is deleted).
        """
        with self._channel() as channel:
            total = self._require_dead_letter_queue(channel, queue)
            chosen = self._select(channel, queue, total, message_ids)
            for delivery in chosen:
                channel.basic_ack(delivery.tag)
            _give_back(channel)
            return len(chosen)

    def purge_dead(self, queue: str) -> int:
        with self._channel() as channel:
            self._require_dead_letter_queue(channel, queue)
            method = channel.queue_purge(queue + DEAD_LETTER_QUEUE_SUFFIX)
            return int(method.method.message_count)

    # -- Internals ------------------------------------------------------------------------------

    def _channel(self) -> AbstractContextManager[BlockingChannel]:
        return self._session.channel()

    def _declare_passive(self, channel: BlockingChannel, name: str) -> tuple[BlockingChannel, QueueCounts]:
        return self._session.declare_passive(channel, name)

    def _read_queues(self, first_channel: BlockingChannel, names: Sequence[str]) -> list[QueueStats]:
        channel = first_channel
        stats = []
        for name in names:
            channel, ready = self._declare_passive(channel, name)
            channel, delayed = self._declare_passive(channel, name + DELAY_QUEUE_SUFFIX)
            channel, dead = self._declare_passive(channel, name + DEAD_LETTER_QUEUE_SUFFIX)
            stats.append(
                QueueStats(
                    name=name,
                    ready=ready.ready,
                    # Workers hold delayed messages unacknowledged, out of message_count.
                    delayed=delayed.ready if delayed.consumers == 0 else None,
                    in_flight=None,
                    dead=dead.ready,
                    oldest_age=0.0 if ready.ready == 0 else None,
                    consumers=ready.consumers,
                )
            )
        if channel is not first_channel and channel.is_open:
            channel.close()
        return stats

    def _require_dead_letter_queue(self, channel: BlockingChannel, queue: str) -> int:
        """How many dead letters the queue holds. Raises QueueNotFound."""
        _, dead = self._declare_passive(channel, queue + DEAD_LETTER_QUEUE_SUFFIX)
        if not dead.exists:
            raise QueueNotFound(f"queue {queue!r} has no dead-letter queue on {self._redacted_url}")
        return dead.ready

    def _browse(
        self, channel: BlockingChannel, queue: str, count: int, *, until: set[str] | None = None
    ) -> list[_Delivery]:
        """Take up to ``count`` dead letters from the head, unacknowledged (stopping early once
        every id of ``until`` was seen). The caller acknowledges some and gives the rest back."""
        deliveries: list[_Delivery] = []
        remaining = set(until) if until else None
        while len(deliveries) < count:
            method, properties, body = channel.basic_get(queue + DEAD_LETTER_QUEUE_SUFFIX, auto_ack=False)
            if method is None:
                break
            delivery = _Delivery(tag=method.delivery_tag, properties=properties, body=body)
            deliveries.append(delivery)
            if remaining is not None:
                remaining.discard(delivery.message_id or "")
                if not remaining:
                    break
        return deliveries

    def _select(
        self, channel: BlockingChannel, queue: str, total: int, message_ids: Sequence[str]
    ) -> list[_Delivery]:
        """The deliveries of the given ids; every other browsed message is given back. Raises
        MessageNotFound (giving everything back) unless all ids are found."""
        wanted = set(message_ids)
        if not wanted:
            return []
        deliveries = self._browse(channel, queue, total, until=wanted)
        chosen: dict[str, _Delivery] = {}
        for delivery in deliveries:
            message_id = delivery.message_id
            if message_id in wanted and message_id not in chosen:
                chosen[message_id] = delivery
        missing = [message_id for message_id in dict.fromkeys(message_ids) if message_id not in chosen]
        if missing:
            _give_back(channel)
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise MessageNotFound(f"no dead letter {shown} in queue {queue!r}: nothing was changed")
        return list(chosen.values())

    def _requeue_all(
        self, channel: BlockingChannel, queue: str, total: int, reset_retries: bool, progress: Progress | None
    ) -> int:
        moved = 0
        # Bounded by the count at the start, so messages dying meanwhile cannot keep it going.
        while moved < total:
            method, properties, body = channel.basic_get(queue + DEAD_LETTER_QUEUE_SUFFIX, auto_ack=False)
            if method is None:
                break
            self._requeue_one(channel, queue, _Delivery(method.delivery_tag, properties, body), reset_retries)
            moved += 1
            if progress is not None and (moved % PROGRESS_EVERY == 0 or moved == total):
                progress(moved, total)
        return moved

    def _requeue_one(
        self, channel: BlockingChannel, queue: str, delivery: _Delivery, reset_retries: bool
    ) -> None:
        properties = pika.BasicProperties(delivery_mode=PERSISTENT, priority=delivery.properties.priority)
        body = requeued_payload(delivery.body, queue=queue, reset_retries=reset_retries)
        # With confirms on, this returns once RabbitMQ has the message (mandatory: once it is
        # routed to the queue); only then may the dead letter go.
        channel.basic_publish(
            exchange="", routing_key=queue, body=body, properties=properties, mandatory=True
        )
        channel.basic_ack(delivery.tag)

    def _read_management(self) -> list[QueueStats]:
        listed = self._session.management_get("queues/{vhost}", {"columns": MANAGEMENT_COLUMNS})
        if not isinstance(listed, list):
            raise BrokerUnavailable(f"{self._redacted_url}'s management API did not answer a queue list")
        rows = {row["name"]: row for row in listed if isinstance(row, dict) and "name" in row}
        names = sorted(set(self.queues) | {canonical_queue_name(name) for name in rows})
        return [_management_stats(name, rows) for name in names]


def _management_stats(name: str, rows: dict[str, dict[str, Any]]) -> QueueStats:
    def count(queue: str, column: str) -> int | None:
        row = rows.get(queue)
        if row is None:
            return 0  # A queue that does not exist holds nothing.
        value = row.get(column)
        # A queue RabbitMQ has not gathered statistics for yet has no counts: unknown.
        return value if isinstance(value, int) else None

    ready = count(name, "messages_ready")
    return QueueStats(
        name=name,
        ready=ready,
        delayed=count(name + DELAY_QUEUE_SUFFIX, "messages"),
        in_flight=count(name, "messages_unacknowledged"),
        dead=count(name + DEAD_LETTER_QUEUE_SUFFIX, "messages"),
        oldest_age=0.0 if ready == 0 else None,
        consumers=count(name, "consumers"),
    )


def _give_back(channel: BlockingChannel) -> None:
    """Return every unacknowledged message of the channel to its queue, in place."""
    if channel.is_open:
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)


def _dead_letter(queue: str, delivery: _Delivery) -> DeadLetter:
    return dead_letter_from_payload(
        delivery.body, queue=queue, died_at=_died_at(delivery.properties), fallback_id=str(delivery.tag)
    )


def _died_at(properties: pika.BasicProperties) -> float | None:
    headers = properties.headers or {}
    deaths = headers.get(X_DEATH_HEADER)
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return None
    when = deaths[0].get("time")
    return when.timestamp() if isinstance(when, datetime) else None
