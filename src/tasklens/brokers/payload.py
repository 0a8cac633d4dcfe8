"""Dramatiq message payloads as brokers store them: read them into ``DeadLetter`` and rewrite
them for a requeue.

Dramatiq's default encoder writes a JSON object with ``queue_name``, ``actor_name``, ``args``,
``kwargs``, ``options``, ``message_id`` and ``message_timestamp`` (Unix ms). Payloads written by
another encoder (pickle) cannot be read here: they are shown as undecodable and requeued as they
are. Nothing here imports Dramatiq: the monitor does not need the application installed.
"""

from __future__ import annotations

import json
import time
from typing import Any

from tasklens import semconv
from tasklens.brokers.base import DeadLetter

__all__ = [
    "UNDECODABLE_ACTOR",
    "dead_letter_from_payload",
    "message_id_of",
    "requeued_payload",
]

#: The ``actor`` shown for a payload that is not a Dramatiq JSON message.
UNDECODABLE_ACTOR = "<undecodable>"

#: Dramatiq's option holding when a delayed message is due, in Unix ms.
ETA_OPTION = "eta"
#: Dramatiq's option counting the retries made so far (set by the Retries middleware).
RETRIES_OPTION = "retries"
#: The Redis broker's option holding the message's id in the Redis keys.
REDIS_MESSAGE_ID_OPTION = "redis_message_id"
#: Suffix Dramatiq gives the delay queue of a queue.
DELAY_QUEUE_SUFFIX = ".DQ"
#: Suffix Dramatiq gives the dead-letter queue of a queue.
DEAD_LETTER_QUEUE_SUFFIX = ".XQ"


def decode(payload: bytes | str) -> dict[str, Any] | None:
    """The payload as a dict, or ``None`` when it is not a JSON object."""
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return message if isinstance(message, dict) else None


def message_id_of(payload: bytes | str) -> str | None:
    """Dramatiq's ``message_id`` of a payload, if it can be read."""
    message = decode(payload)
    value = message.get("message_id") if message else None
    return value if isinstance(value, str) else None


def dead_letter_from_payload(
    payload: bytes | str, *, queue: str, died_at: float | None, fallback_id: str
) -> DeadLetter:
    """A ``DeadLetter`` from a stored payload.

    Parameters:
      payload(bytes|str): The message as the broker stores it.
      queue(str): The canonical queue name.
      died_at(float|None): When it was dead-lettered, Unix seconds, if known.
      fallback_id(str): The id to show when the payload has no readable ``message_id``.
    """
    message = decode(payload)
    if message is None:
        return DeadLetter(
            message_id=fallback_id, queue=queue, actor=UNDECODABLE_ACTOR, args=[], kwargs={}, died_at=died_at
        )
    args = message.get("args")
    kwargs = message.get("kwargs")
    options = message.get("options")
    timestamp = message.get("message_timestamp")
    message_id = message.get("message_id")
    return DeadLetter(
        message_id=message_id if isinstance(message_id, str) else fallback_id,
        queue=queue,
        actor=str(message.get("actor_name", "")),
        args=list(args) if isinstance(args, list) else [],
        kwargs=dict(kwargs) if isinstance(kwargs, dict) else {},
        options=dict(options) if isinstance(options, dict) else {},
        died_at=died_at,
        enqueued_at=timestamp / 1000 if isinstance(timestamp, (int, float)) else None,
    )


def requeued_payload(
    payload: bytes,
    *,
    queue: str,
    reset_retries: bool,
    redis_message_id: str | None = None,
) -> bytes:
    """The payload to enqueue when a dead letter goes back to ``queue``.

    The message is addressed to the canonical queue without its ``eta`` (a message that died in
    the delay queue runs now), marked ready now, and optionally has its retry count reset so
    that the Retries middleware gives it every attempt again. Undecodable payloads are returned
    unchanged.

    Parameters:
      payload(bytes): The dead letter as stored.
      queue(str): The canonical queue it goes back to.
      reset_retries(bool): Whether to set the retry count back to 0.
      redis_message_id(str|None): The id of the message in Redis's keys, kept in the options as
        the Redis broker expects (``None`` on other brokers).
    """
    message = decode(payload)
    if message is None:
        return payload
    options = message.get("options")
    if not isinstance(options, dict):
        options = {}
    options.pop(ETA_OPTION, None)
    options[semconv.READY_AT_OPTION] = int(time.time() * 1000)
    if reset_retries:
        options[RETRIES_OPTION] = 0
    if redis_message_id is not None:
        options[REDIS_MESSAGE_ID_OPTION] = redis_message_id
    message["options"] = options
    message["queue_name"] = queue
    return json.dumps(message, separators=(",", ":")).encode()


def canonical_queue_name(name: str) -> str:
    """The queue's name without Dramatiq's ``.DQ``/``.XQ`` suffix."""
    for suffix in (DELAY_QUEUE_SUFFIX, DEAD_LETTER_QUEUE_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
