"""The Celery app both sides of a trial use, on a queue and exchange no one else uses.

Redis and RabbitMQ on localhost are shared with other users of the machine: each trial gets its
own queue and exchange (so on Redis its own ``_kombu.binding.*`` key), runs with remote control,
events, gossip and mingle off (so it creates no ``pidbox`` or ``celeryev`` names either), and
deletes what it created when it ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from celery import Celery

from benchmarks.brokers import RABBITMQ_URL, REDIS_URL

__all__ = ["BROKER_URLS", "NOOP_TASK", "delete_queue", "make_app", "unique_queue_name"]

#: The broker URL of each broker kind a run covers.
BROKER_URLS = {"redis": REDIS_URL, "rabbitmq": RABBITMQ_URL}

#: The name of the one task every trial sends and runs.
NOOP_TASK = "tlbench.noop"


def unique_queue_name() -> str:
    """A queue (and exchange) name for one trial."""
    return f"tlbench_celery_{uuid.uuid4().hex[:10]}"


def make_app(broker: str, queue_name: str, on_run: Callable[[], None]) -> Celery:
    """A Celery app on ``broker`` whose :data:`NOOP_TASK` calls ``on_run`` and returns.

    Parameters:
      broker(str): ``redis`` or ``rabbitmq``.
      queue_name(str): The queue, exchange and routing key of every task.
      on_run(callable): What the task body does (the worker counts itself with it).
    """
    try:
        url = BROKER_URLS[broker]
    except KeyError:
        raise ValueError(f"unknown broker {broker!r}; expected one of {', '.join(BROKER_URLS)}") from None
    app = Celery("tlbench", broker=url, set_as_current=True)
    app.conf.update(
        task_default_queue=queue_name,
        task_default_exchange=queue_name,
        task_default_routing_key=queue_name,
        task_ignore_result=True,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name=NOOP_TASK, shared=False)
    def noop() -> None:
        on_run()

    return app


def delete_queue(app: Celery, broker: str, queue_name: str) -> None:
    """Delete the queue and exchange ``queue_name`` (and on Redis every key named after it)."""
    with app.connection_for_write() as connection:
        if broker == "redis":
            client = connection.default_channel.client
            keys = list(client.scan_iter(match=f"*{queue_name}*", count=1000))
            if keys:
                client.delete(*keys)
            return
        channel = connection.default_channel
        channel.queue_delete(queue_name)
        channel.exchange_delete(queue_name)
