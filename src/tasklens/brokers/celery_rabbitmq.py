"""Celery on RabbitMQ: queue state, read-only.

Celery declares one queue per task queue (``celery`` by default) and, with quorum queues' native
delayed delivery (Celery 5.5+), 28 ``celery_delayed_{level}`` queues that hold countdown/eta tasks
until due. Over AMQP a passive ``queue_declare`` tells a queue's ready messages and consumers only:

- ready and consumers are exact;
- in flight (unacknowledged: prefetched, executing with ``acks_late``, and countdown/eta tasks of
  classic queues, which workers hold until due) needs the management API (``management_url``),
  and cannot be split into eta and reserved there: unknown (``None``) without it;
- delayed: the native delayed-delivery queues hold the tasks of every queue together, so their
  sum is reported on one row, ``celery_delayed`` (``NATIVE_DELAYED_QUEUE``); a task queue's own
  ``delayed`` is unknown;
- dead letters exist only where a queue has a dead-letter exchange (``x-dead-letter-exchange``,
  as a queue argument or a policy): with the management API, the queues bound to that exchange
  are counted; from ``--app``, the app's queue bound to it; unknown otherwise. They are browsed,
  requeued, deleted and purged as Dramatiq's are (``AmqpDeadLetters``: at-least-once with
  publisher confirms), named by task id; a requeued task goes back to its queue with its
  headers and body as they were (protocol 2), less RabbitMQ's ``x-death`` records;
- the oldest ready message's age cannot be read without consuming: unknown (0 when none is ready).

Example:

  >>> inspector = CeleryRabbitmqInspector("amqp://guest:guest@127.0.0.1:5672/%2F", queues=["celery"])
  >>> inspector.snapshot().queue("celery").ready
  3
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pika

from tasklens import semconv
from tasklens.brokers.amqp import AmqpSession
from tasklens.brokers.amqp_dead_letters import AmqpDeadLetters, Delivery, Republish, died_at
from tasklens.brokers.base import BrokerSnapshot, DeadLetter, NoDeadLetterQueue, QueueStats
from tasklens.brokers.celery_payload import celery_dead_letter, celery_requeued_headers, celery_task_id
from tasklens.brokers.celery_workers import HeartbeatListener, celery_snapshot

__all__ = ["DELAYED_LEVELS", "NATIVE_DELAYED_QUEUE", "CeleryRabbitmqInspector"]

#: Levels of kombu's native delayed delivery: queues ``celery_delayed_0`` to ``celery_delayed_27``.
DELAYED_LEVELS = 28
#: Name of the delayed-delivery queues without their level, and of the row that sums them.
NATIVE_DELAYED_QUEUE = "celery_delayed"
#: The queue Celery sends to unless told otherwise.
DEFAULT_QUEUE = "celery"
#: Celery's queues that are not task queues (events, remote control and replies).
INTERNAL_QUEUE_MARKERS = ("celeryev.", ".pidbox", "tasklens.celeryev.")
#: Columns asked from the management API's queue list.
MANAGEMENT_COLUMNS = (
    "name,messages,messages_ready,messages_unacknowledged,consumers,arguments,effective_policy_definition"
)
#: Dead-letter exchange as a queue argument, and as a policy key.
DLX_ARGUMENT = "x-dead-letter-exchange"
DLX_POLICY = "dead-letter-exchange"
#: Dead-letter routing key as a queue argument, and as a policy key.
DLRK_ARGUMENT = "x-dead-letter-routing-key"
DLRK_POLICY = "dead-letter-routing-key"


class CeleryRabbitmqInspector(AmqpDeadLetters):
    """Reads Celery's queues on RabbitMQ and acts on the dead letters of those that have a
    dead-letter exchange (the others raise ``NoDeadLetterQueue``).

    Parameters:
      url(str): ``amqp://`` or ``amqps://`` URL, with the virtual host as its path.
      queues(Sequence[str]): Task queues to read; ``celery`` when none is given and there is no
        management API to list them.
      management_url(str|None): The management API's base URL; adds unacknowledged counts, dead
        letters through policies, and queue discovery.
      dead_letter_queues(Mapping[str, str]): Queue -> its dead-letter queue, from the app.
      timeout(float): Connect, handshake and management call timeout, in seconds.
      workers(HeartbeatListener|None): Where live workers come from; ``None``: unknown.
    """

    messaging_system = semconv.MESSAGING_SYSTEM_CELERY

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str] = (),
        management_url: str | None = None,
        dead_letter_queues: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        workers: HeartbeatListener | None = None,
    ) -> None:
        self.url = url
        self._session = AmqpSession(url, timeout=timeout, management_url=management_url)
        self.queues = tuple(dict.fromkeys(queues)) or ((DEFAULT_QUEUE,) if not management_url else ())
        self.dead_letter_queues = dict(dead_letter_queues or {})
        self.timeout = timeout
        self._workers = workers

    @property
    def redacted_url(self) -> str:
        return self._session.redacted_url

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()
        self._session.close()

    def snapshot(self) -> BrokerSnapshot:
        started = time.monotonic()
        if self._workers is not None:
            self._workers.start()
        queues = self._read_management() if self._session.management_url else self._read_amqp()
        return celery_snapshot(queues, self._workers, started)

    def _read_amqp(self) -> list[QueueStats]:
        stats = []
        with self._session.channel() as first:
            channel = first
            for name in sorted(self.queues):
                channel, counts = self._session.declare_passive(channel, name)
                dead: int | None = None
                dead_queue = self.dead_letter_queues.get(name)
                if dead_queue is not None:
                    channel, dead_counts = self._session.declare_passive(channel, dead_queue)
                    dead = dead_counts.ready if dead_counts.exists else None
                stats.append(
                    QueueStats(
                        name=name,
                        ready=counts.ready,
                        delayed=None,
                        in_flight=None,
                        dead=dead,
                        oldest_age=0.0 if counts.ready == 0 else None,
                        consumers=counts.consumers,
                    )
                )
            # Celery declares every level at once: without level 0 there is no delayed delivery,
            # and the 27 other declares (each closing a channel when missing) are spared.
            channel, first_level = self._session.declare_passive(channel, f"{NATIVE_DELAYED_QUEUE}_0")
            if first_level.exists:
                delayed = first_level.ready
                for level in range(1, DELAYED_LEVELS):
                    channel, counts = self._session.declare_passive(
                        channel, f"{NATIVE_DELAYED_QUEUE}_{level}"
                    )
                    delayed += counts.ready
                stats.append(_delayed_row(delayed))
            if channel is not first and channel.is_open:
                channel.close()
        return stats

    def _read_management(self) -> list[QueueStats]:
        listed = self._session.management_get("queues/{vhost}", {"columns": MANAGEMENT_COLUMNS})
        rows = {row["name"]: row for row in listed or [] if isinstance(row, dict) and "name" in row}
        delayed_rows = [row for name, row in rows.items() if _delayed_level(name)]
        names = set(self.queues) | {name for name in rows if _is_task_queue(name)}
        bindings = self._dead_letter_bindings(rows, names)
        dead_queues = {queue for targets in bindings.values() for queue in targets}
        stats = [
            _management_stats(name, rows, bindings.get(name))
            for name in sorted(names - dead_queues)
            if name in rows or name in self.queues
        ]
        if delayed_rows:
            stats.append(_delayed_row(sum(_count(row, "messages") or 0 for row in delayed_rows)))
        return stats

    def _dead_letter_bindings(
        self, rows: Mapping[str, Mapping[str, Any]], names: set[str]
    ) -> dict[str, list[str]]:
        """Queue -> the queues its dead-letter exchange routes its dead letters to."""
        found: dict[str, list[str]] = {}
        for name in names:
            row = rows.get(name) or {}
            arguments = row.get("arguments") or {}
            policy = row.get("effective_policy_definition") or {}
            exchange = arguments.get(DLX_ARGUMENT) or (
                policy.get(DLX_POLICY) if isinstance(policy, dict) else None
            )
            if not isinstance(exchange, str) or not exchange:
                continue
            routing_key = arguments.get(DLRK_ARGUMENT) or (
                policy.get(DLRK_POLICY) if isinstance(policy, dict) else None
            )
            bound = self._session.management_get(f"exchanges/{{vhost}}/{_quote(exchange)}/bindings/source")
            targets = [
                b["destination"]
                for b in bound or []
                if isinstance(b, dict)
                and b.get("destination_type") == "queue"
                and (routing_key is None or b.get("routing_key") in (routing_key, "#", ""))
            ]
            if not targets and name in self.dead_letter_queues:
                targets = [self.dead_letter_queues[name]]
            found[name] = targets
        return found

    # -- Dead letters (browsing and actions: AmqpDeadLetters) ---------------------------------

    def _dead_letter_queue(self, queue: str) -> str:
        known = self.dead_letter_queues.get(queue)
        if known is not None:
            return known
        if self._session.management_url:
            row = self._session.management_get(f"queues/{{vhost}}/{_quote(queue)}")
            if isinstance(row, dict):
                targets = self._dead_letter_bindings({queue: row}, {queue}).get(queue)
                if targets:
                    return targets[0]
        raise NoDeadLetterQueue(
            f"Celery queue {queue!r} on {self.redacted_url} has no dead-letter exchange bound to a "
            "queue that tasklens knows of: give the app (--app) or the management API URL "
            "(--rabbitmq-management-url)"
        )

    def _message_id(self, delivery: Delivery) -> str | None:
        return celery_task_id(delivery.properties.headers, delivery.properties.correlation_id)

    def _decode(self, queue: str, delivery: Delivery) -> DeadLetter:
        properties = delivery.properties
        return celery_dead_letter(
            delivery.body,
            headers=properties.headers or {},
            content_type=properties.content_type,
            queue=queue,
            died_at=died_at(properties),
            fallback_id=properties.correlation_id or str(delivery.tag),
        )

    def _republish(self, queue: str, delivery: Delivery, reset_retries: bool) -> Republish:
        original = delivery.properties
        properties = pika.BasicProperties(
            content_type=original.content_type,
            content_encoding=original.content_encoding,
            headers=celery_requeued_headers(original.headers or {}, reset_retries=reset_retries),
            delivery_mode=original.delivery_mode,
            priority=original.priority,
            correlation_id=original.correlation_id,
            reply_to=original.reply_to,
        )
        return Republish(routing_key=queue, body=delivery.body, properties=properties)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _delayed_level(name: str) -> bool:
    prefix = f"{NATIVE_DELAYED_QUEUE}_"
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def _is_task_queue(name: str) -> bool:
    return not _delayed_level(name) and not any(marker in name for marker in INTERNAL_QUEUE_MARKERS)


def _count(row: Mapping[str, Any] | None, column: str) -> int | None:
    if row is None:
        return 0  # A queue that does not exist holds nothing.
    value = row.get(column)
    # A queue RabbitMQ has not gathered statistics for yet has no counts: unknown.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _management_stats(
    name: str, rows: Mapping[str, Mapping[str, Any]], dead_queues: list[str] | None
) -> QueueStats:
    row = rows.get(name)
    ready = _count(row, "messages_ready")
    dead: int | None = None
    if dead_queues:
        counts = [_count(rows.get(queue), "messages") for queue in dead_queues]
        dead = None if any(c is None for c in counts) else sum(c or 0 for c in counts)
    return QueueStats(
        name=name,
        ready=ready,
        delayed=None,
        in_flight=_count(row, "messages_unacknowledged"),
        dead=dead,
        oldest_age=0.0 if ready == 0 else None,
        consumers=_count(row, "consumers"),
    )


def _delayed_row(delayed: int) -> QueueStats:
    return QueueStats(
        name=NATIVE_DELAYED_QUEUE,
        ready=None,
        delayed=delayed,
        in_flight=None,
        dead=None,
        oldest_age=None,
    )
