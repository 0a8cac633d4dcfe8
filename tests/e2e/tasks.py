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
"""

from __future__ import annotations

import logging
import os
from typing import Any

import dramatiq
import redis

#: The actor's name, the same on both sides.
ACTOR_NAME = "e2e_work"
#: What the actor logs for each message when asked to.
LOG_LINE = "e2e work done"

logger = logging.getLogger(__name__)

_counter: redis.Redis | None = None


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
