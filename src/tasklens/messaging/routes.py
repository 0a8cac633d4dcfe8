"""Span names and attribute sets of one (library, queue, task): built once, reused per message.

Both libraries key their routes by the broker, the queue and the task (Dramatiq: the actor), so
a send or a process start copies one prepared dict instead of building it.
"""

from __future__ import annotations

from typing import Any

from tasklens import semconv

__all__ = ["Route"]


class Route:
    """The span names and attribute dicts of the sends and processing of one task on one queue.

    Parameters:
      system(str): ``messaging.system`` (``dramatiq``, ``celery``).
      task_attribute(str): The attribute naming the task (``dramatiq.actor.name``, ``celery.task.name``).
      queue_name(str): ``messaging.destination.name``.
      task_name(str): The task's (actor's) name.
      server(dict): ``server.address``/``server.port`` of the broker, or empty.

    Example:
      >>> route = Route("celery", "celery.task.name", "default", "shop.charge", {})
      >>> route.send_name
      'send default'
    """

    __slots__ = (
        "process_metric_attributes",
        "process_name",
        "process_span_attributes",
        "send_metric_attributes",
        "send_name",
        "send_span_attributes",
        "task_name",
    )

    def __init__(
        self, system: str, task_attribute: str, queue_name: str, task_name: str, server: dict[str, Any]
    ) -> None:
        self.task_name = task_name
        self.send_name = semconv.span_name(semconv.OPERATION_SEND, queue_name)
        self.process_name = semconv.span_name(semconv.OPERATION_PROCESS, queue_name)
        base = {
            semconv.MESSAGING_SYSTEM: system,
            semconv.MESSAGING_DESTINATION_NAME: queue_name,
            task_attribute: task_name,
        }
        self.send_metric_attributes = {**base, semconv.MESSAGING_OPERATION_NAME: semconv.OPERATION_SEND}
        self.process_metric_attributes = {**base, semconv.MESSAGING_OPERATION_NAME: semconv.OPERATION_PROCESS}
        self.send_span_attributes = {
            **self.send_metric_attributes,
            semconv.MESSAGING_OPERATION_TYPE: semconv.OPERATION_SEND,
            **server,
        }
        self.process_span_attributes = {
            **self.process_metric_attributes,
            semconv.MESSAGING_OPERATION_TYPE: semconv.OPERATION_PROCESS,
            **server,
        }
