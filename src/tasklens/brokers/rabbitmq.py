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
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tasklens.brokers.amqp import AmqpSession, QueueCounts
from tasklens.brokers.amqp_dead_letters import AmqpDeadLetters, Delivery, Republish, died_at
from tasklens.brokers.base import BrokerError, BrokerSnapshot, BrokerUnavailable, DeadLetter, QueueStats
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
#: Persistent delivery, as Dramatiq publishes.
PERSISTENT = 2
#: Columns asked from the management API's queue list.
MANAGEMENT_COLUMNS = "name,messages,messages_ready,messages_unacknowledged,consumers"


class NoQueuesKnown(BrokerError):
    """RabbitMQ cannot list queues over AMQP and no other source of queue names was given."""


class RabbitmqInspector(AmqpDeadLetters):
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

    # -- Internals ------------------------------------------------------------------------------

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

    # -- Dramatiq's dead letters (browsing and actions: AmqpDeadLetters) ------------------------

    def _dead_letter_queue(self, queue: str) -> str:
        return queue + DEAD_LETTER_QUEUE_SUFFIX

    def _message_id(self, delivery: Delivery) -> str | None:
        return message_id_of(delivery.body)

    def _decode(self, queue: str, delivery: Delivery) -> DeadLetter:
        return dead_letter_from_payload(
            delivery.body, queue=queue, died_at=died_at(delivery.properties), fallback_id=str(delivery.tag)
        )

    def _republish(self, queue: str, delivery: Delivery, reset_retries: bool) -> Republish:
        return Republish(
            routing_key=queue,
            body=requeued_payload(delivery.body, queue=queue, reset_retries=reset_retries),
            properties=pika.BasicProperties(delivery_mode=PERSISTENT, priority=delivery.properties.priority),
        )

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
