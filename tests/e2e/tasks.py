"""The actor and broker of the end-to-end tests, configured by environment variables.

The worker modules (``app_with_setup``, ``app_plain``) build them from the environment the test
gives the ``dramatiq`` CLI; the test process builds the same actor on its own producer broker.

Environment:
  TASKLENS_E2E_BROKER: ``redis`` or ``rabbitmq``.
  TASKLENS_E2E_BROKER_URL: the broker's URL.
  TASKLENS_E2E_NAMESPACE: the Redis key namespace (Redis only).
  TASKLENS_E2E_QUEUE: the queue name.
  TASKLENS_E2E_COUNTER_URL / TASKLENS_E2E_COUNTER_KEY: a Redis key counting processed messages.
  TASKLENS_E2E_LOG: when ``1``, the actor logs :data:`LOG_LINE` for each message.
  TASKLENS_E2E_PROCESSES: when set, the first message each worker process takes waits until
    that many worker processes have each taken one (see :func:`_join_the_others`), so every
    process runs some of the work however the broker hands it out.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import dramatiq
import redis

#: The actor's name, the same on both sides.
ACTOR_NAME = "e2e_work"
#: What the actor logs for each message when asked to.
LOG_LINE = "e2e work done"

logger = logging.getLogger(__name__)

_counter: redis.Redis | None = None
#: Set once this worker process has met the others (:func:`_join_the_others`).
_joined = threading.Event()
_joining = threading.Lock()
#: How long a process waits for the others before it works alone (the test then fails).
JOIN_TIMEOUT = 60


def _join_the_others(client: redis.Redis, counter_key: str, processes: int) -> None:
    """Hold this process's threads until ``processes`` worker processes have each taken a message.

    One thread per process adds the process id to a Redis set; the process that completes the
    set pushes one token per process and each process's thread takes one with a blocking pop.
    The other threads of a process wait on an event meanwhile, so a process that was quicker to
    fetch leaves the rest of the queue to the others.
    """
    if _joined.is_set():
        return
    with _joining:
        if not _joined.is_set():
            members, tokens = f"{counter_key}:processes", f"{counter_key}:go"
            client.sadd(members, os.getpid())
            if client.scard(members) >= processes:
                client.rpush(tokens, *["go"] * processes)
            client.blpop([tokens], timeout=JOIN_TIMEOUT)
            _joined.set()


def broker_from_env() -> dramatiq.Broker:
    """The broker the environment describes."""
    kind = os.environ["TASKLENS_E2E_BROKER"]
    url = os.environ["TASKLENS_E2E_BROKER_URL"]
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=os.environ["TASKLENS_E2E_NAMESPACE"])
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    return RabbitmqBroker(url=url)


def declare_work(broker: dramatiq.Broker, queue_name: str, counter_url: str, counter_key: str) -> Any:
    """Declare the actor on ``broker``: it counts each message it processes in Redis."""

    def work(n: int) -> None:
        global _counter
        if _counter is None:  # one client per worker process, made after the fork
            _counter = redis.Redis.from_url(counter_url)
        processes = os.environ.get("TASKLENS_E2E_PROCESSES")
        if processes:
            _join_the_others(_counter, counter_key, int(processes))
        _counter.incr(counter_key)
        if os.environ.get("TASKLENS_E2E_LOG") == "1":
            logger.info(LOG_LINE)

    return dramatiq.actor(work, actor_name=ACTOR_NAME, queue_name=queue_name, broker=broker, max_retries=0)


def declare_work_from_env(broker: dramatiq.Broker) -> Any:
    """:func:`declare_work` with the queue and counter the environment names."""
    return declare_work(
        broker,
        os.environ["TASKLENS_E2E_QUEUE"],
        os.environ["TASKLENS_E2E_COUNTER_URL"],
        os.environ["TASKLENS_E2E_COUNTER_KEY"],
    )
