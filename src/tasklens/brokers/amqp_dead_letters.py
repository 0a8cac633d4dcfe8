"""Dead-letter browsing and actions over AMQP, shared by both RabbitMQ layouts.

A dead-letter queue on RabbitMQ is read only from its head, so browsing takes messages with
``basic_get`` and gives them back with ``basic_nack(requeue=True)`` (RabbitMQ gives them back by
itself when the connection dies): reading never loses one. Requeue is at-least-once: each message
is published to its queue with publisher confirms (and ``mandatory``, so an unroutable one is an
error) and only then acknowledged in the dead-letter queue; a crash between the two may duplicate
that one message, never lose it. Delete acknowledges the chosen messages; purge empties the queue.

What differs per layout is small and is what ``AmqpDeadLetters`` asks its subclass for: which
queue holds a queue's dead letters (Dramatiq: ``q.XQ``; Celery: the queue bound to its
dead-letter exchange), how a message is identified and read, and what is published on requeue.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tasklens.brokers.amqp import AmqpSession
from tasklens.brokers.base import (
    BrokerInspector,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
)

__all__ = ["MAX_PAGE_SIZE", "PROGRESS_EVERY", "X_DEATH_HEADER", "AmqpDeadLetters", "Delivery", "died_at"]

#: The most dead letters one page may hold.
MAX_PAGE_SIZE = 1000
#: ``requeue_dead`` reports progress after this many messages.
PROGRESS_EVERY = 100
#: Header RabbitMQ adds when it dead-letters a message (a list, most recent first).
X_DEATH_HEADER = "x-death"


@dataclass(frozen=True)
class Delivery:
    """A dead letter taken from its queue and not acknowledged yet.

    Parameters:
      tag(int): Its delivery tag on the channel that took it.
      properties(pika.BasicProperties): Its AMQP properties (headers included).
      body(bytes): Its body.
    """

    tag: int
    properties: pika.BasicProperties
    body: bytes


@dataclass(frozen=True)
class Republish:
    """What a requeue publishes for one dead letter.

    Parameters:
      routing_key(str): The queue it goes to, through the default exchange.
      body(bytes): The message body.
      properties(pika.BasicProperties): Its properties.
    """

    routing_key: str
    body: bytes
    properties: pika.BasicProperties


class AmqpDeadLetters(BrokerInspector):
    """The dead-letter part of a RabbitMQ inspector. Subclasses set ``_session`` and answer the
    four layout questions below."""

    _session: AmqpSession

    @abc.abstractmethod
    def _dead_letter_queue(self, queue: str) -> str:
        """The queue holding ``queue``'s dead letters. Raises QueueNotFound when it has none."""

    @abc.abstractmethod
    def _message_id(self, delivery: Delivery) -> str | None:
        """The id a user names the message by, if it can be read."""

    @abc.abstractmethod
    def _decode(self, queue: str, delivery: Delivery) -> DeadLetter:
        """The message as a ``DeadLetter`` of ``queue``."""

    @abc.abstractmethod
    def _republish(self, queue: str, delivery: Delivery, reset_retries: bool) -> Republish:
        """What to publish so that the message runs again from ``queue``."""

    # -- Reading --------------------------------------------------------------------------------

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
            dead_queue, total = self._require_dead_letter_queue(channel, queue)
            deliveries = self._browse(channel, dead_queue, min(total, offset + limit))
            _give_back(channel)
        items = [self._decode(queue, delivery) for delivery in deliveries[offset : offset + limit]]
        return DeadLetterPage(items=items, total=total, offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        with self._channel() as channel:
            dead_queue, total = self._require_dead_letter_queue(channel, queue)
            deliveries = self._browse(channel, dead_queue, total, until={message_id})
            _give_back(channel)
        for delivery in deliveries:
            if self._message_id(delivery) == message_id:
                return self._decode(queue, delivery)
        raise MessageNotFound(f"no dead letter {message_id!r} in queue {queue!r}")

    # -- Actions --------------------------------------------------------------------------------

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
          queue(str): The queue whose dead letters go back to it.
          message_ids(Sequence[str]|None): Message ids, or ``None`` for all.
          reset_retries(bool): Set the retry count back to 0.
          progress(Progress|None): Called with (moved so far, total) every few messages.

        Raises:
          MessageNotFound: when an id is not in the dead-letter queue (nothing is moved).
        """
        with self._channel() as channel:
            dead_queue, total = self._require_dead_letter_queue(channel, queue)
            channel.confirm_delivery()
            if message_ids is None:
                return self._requeue_all(channel, queue, dead_queue, total, reset_retries, progress)
            chosen = self._select(channel, queue, dead_queue, total, message_ids)
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
            dead_queue, total = self._require_dead_letter_queue(channel, queue)
            chosen = self._select(channel, queue, dead_queue, total, message_ids)
            for delivery in chosen:
                channel.basic_ack(delivery.tag)
            _give_back(channel)
            return len(chosen)

    def purge_dead(self, queue: str) -> int:
        with self._channel() as channel:
            dead_queue, _ = self._require_dead_letter_queue(channel, queue)
            method = channel.queue_purge(dead_queue)
            return int(method.method.message_count)

    # -- Internals ------------------------------------------------------------------------------

    def _channel(self) -> AbstractContextManager[BlockingChannel]:
        return self._session.channel()

    def _require_dead_letter_queue(self, channel: BlockingChannel, queue: str) -> tuple[str, int]:
        """The dead-letter queue's name and how many it holds. Raises QueueNotFound."""
        dead_queue = self._dead_letter_queue(queue)
        _, dead = self._session.declare_passive(channel, dead_queue)
        if not dead.exists:
            raise QueueNotFound(f"queue {queue!r} has no dead-letter queue on {self._session.redacted_url}")
        return dead_queue, dead.ready

    def _browse(
        self, channel: BlockingChannel, dead_queue: str, count: int, *, until: set[str] | None = None
    ) -> list[Delivery]:
        """Take up to ``count`` dead letters from the head, unacknowledged (stopping early once
        every id of ``until`` was seen). The caller acknowledges some and gives the rest back."""
        deliveries: list[Delivery] = []
        remaining = set(until) if until else None
        while len(deliveries) < count:
            method, properties, body = channel.basic_get(dead_queue, auto_ack=False)
            if method is None:
                break
            delivery = Delivery(tag=method.delivery_tag, properties=properties, body=body)
            deliveries.append(delivery)
            if remaining is not None:
                remaining.discard(self._message_id(delivery) or "")
                if not remaining:
                    break
        return deliveries

    def _select(
        self,
        channel: BlockingChannel,
        queue: str,
        dead_queue: str,
        total: int,
        message_ids: Sequence[str],
    ) -> list[Delivery]:
        """The deliveries of the given ids; every other browsed message is given back. Raises
        MessageNotFound (giving everything back) unless all ids are found."""
        wanted = set(message_ids)
        if not wanted:
            return []
        deliveries = self._browse(channel, dead_queue, total, until=wanted)
        chosen: dict[str, Delivery] = {}
        for delivery in deliveries:
            message_id = self._message_id(delivery)
            if message_id is not None and message_id in wanted and message_id not in chosen:
                chosen[message_id] = delivery
        missing = [message_id for message_id in dict.fromkeys(message_ids) if message_id not in chosen]
        if missing:
            _give_back(channel)
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise MessageNotFound(f"no dead letter {shown} in queue {queue!r}: nothing was changed")
        return list(chosen.values())

    def _requeue_all(
        self,
        channel: BlockingChannel,
        queue: str,
        dead_queue: str,
        total: int,
        reset_retries: bool,
        progress: Progress | None,
    ) -> int:
        moved = 0
        # Bounded by the count at the start, so messages dying meanwhile cannot keep it going.
        while moved < total:
            method, properties, body = channel.basic_get(dead_queue, auto_ack=False)
            if method is None:
                break
            self._requeue_one(channel, queue, Delivery(method.delivery_tag, properties, body), reset_retries)
            moved += 1
            if progress is not None and (moved % PROGRESS_EVERY == 0 or moved == total):
                progress(moved, total)
        return moved

    def _requeue_one(
        self, channel: BlockingChannel, queue: str, delivery: Delivery, reset_retries: bool
    ) -> None:
        message = self._republish(queue, delivery, reset_retries)
        # With confirms on, this returns once RabbitMQ has the message (mandatory: once it is
        # routed to the queue); only then may the dead letter go.
        channel.basic_publish(
            exchange="",
            routing_key=message.routing_key,
            body=message.body,
            properties=message.properties,
            mandatory=True,
        )
        channel.basic_ack(delivery.tag)


def _give_back(channel: BlockingChannel) -> None:
    """Return every unacknowledged message of the channel to its queue, in place."""
    if channel.is_open:
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)


def died_at(properties: pika.BasicProperties) -> float | None:
    """When RabbitMQ dead-lettered the message (its latest ``x-death``), Unix seconds, if known."""
    headers: dict[str, Any] = properties.headers or {}
    deaths = headers.get(X_DEATH_HEADER)
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return None
    when = deaths[0].get("time")
    return when.timestamp() if isinstance(when, datetime) else None
