"""Celery task messages as brokers hold them: read them into ``DeadLetter``, rewrite their headers
for a requeue.

Celery's message protocol 2 carries the task's name, id and retry count in the message headers
(``task``, ``id``, ``retries``, ``eta``, ``root_id``, ``parent_id``, ``argsrepr``...) and a body of
``[args, kwargs, embed]`` (``embed``: callbacks, errbacks, chain, chord), serialized as the
message's ``content_type`` says. Only JSON bodies (Celery's default serializer) are read here;
others are shown with their ``argsrepr``/``kwargsrepr`` headers and requeued untouched. Nothing
here imports Celery: the monitor does not need the application installed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tasklens import semconv
from tasklens.brokers.base import DeadLetter
from tasklens.brokers.payload import UNDECODABLE_ACTOR

__all__ = [
    "JSON_CONTENT_TYPE",
    "celery_dead_letter",
    "celery_requeued_headers",
    "celery_task_id",
]

#: The content type of Celery's default (JSON) serializer.
JSON_CONTENT_TYPE = "application/json"
#: Protocol 2 headers naming the task, its id and its retry count.
TASK_HEADER = "task"
ID_HEADER = "id"
RETRIES_HEADER = "retries"
#: Headers RabbitMQ adds when it dead-letters a message; a requeued task starts without them.
DEATH_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)
#: Headers shown among a dead letter's options (what a user needs to place it in its workflow).
SHOWN_HEADERS = ("eta", "expires", "root_id", "parent_id", "group", "origin", "argsrepr", "kwargsrepr")


def celery_task_id(headers: Mapping[str, Any] | None, correlation_id: str | None) -> str | None:
    """The task id of a message: its ``id`` header (protocol 2), else its correlation id."""
    value = (headers or {}).get(ID_HEADER)
    if isinstance(value, str) and value:
        return value
    return correlation_id or None


def _body(body: bytes, content_type: str | None) -> tuple[list[Any], dict[str, Any]] | None:
    if content_type not in (None, JSON_CONTENT_TYPE):
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(decoded, list) or len(decoded) < 2:
        return None
    args, kwargs = decoded[0], decoded[1]
    return (list(args) if isinstance(args, list) else []), (dict(kwargs) if isinstance(kwargs, dict) else {})


def celery_dead_letter(
    body: bytes,
    *,
    headers: Mapping[str, Any],
    content_type: str | None,
    queue: str,
    died_at: float | None,
    fallback_id: str,
) -> DeadLetter:
    """A ``DeadLetter`` from a Celery task message.

    Parameters:
      body(bytes): The message body.
      headers(Mapping): The message headers.
      content_type(str|None): The body's content type.
      queue(str): The queue whose dead letter it is.
      died_at(float|None): When it was dead-lettered, Unix seconds, if known.
      fallback_id(str): The id to show when the message carries no task id.
    """
    decoded = _body(body, content_type)
    task = headers.get(TASK_HEADER)
    options: dict[str, Any] = {key: headers[key] for key in SHOWN_HEADERS if headers.get(key) is not None}
    retries = headers.get(RETRIES_HEADER)
    options["retries"] = retries if isinstance(retries, int) else 0
    if content_type and content_type != JSON_CONTENT_TYPE:
        options["content_type"] = content_type
    published = headers.get(semconv.PUBLISHED_AT_HEADER)
    args, kwargs = decoded if decoded is not None else ([], {})
    return DeadLetter(
        message_id=celery_task_id(headers, None) or fallback_id,
        queue=queue,
        actor=str(task) if task else UNDECODABLE_ACTOR,
        args=args,
        kwargs=kwargs,
        options=options,
        died_at=died_at,
        enqueued_at=published / 1000 if isinstance(published, (int, float)) else None,
    )


def celery_requeued_headers(headers: Mapping[str, Any], *, reset_retries: bool) -> dict[str, Any]:
    """The headers a dead task goes back to its queue with: as it was sent, without RabbitMQ's
    death records, with the retry count at 0 when asked (so that ``max_retries`` counts anew)."""
    requeued = {key: value for key, value in headers.items() if key not in DEATH_HEADERS}
    if reset_retries and RETRIES_HEADER in requeued:
        requeued[RETRIES_HEADER] = 0
    return requeued
