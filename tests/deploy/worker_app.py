"""The broker module the dashboard test gives the ``dramatiq`` CLI: ``tasklens.setup()`` at import.

Environment:
  TASKLENS_DEPLOY_BROKER_URL: the Redis URL.
  TASKLENS_DEPLOY_NAMESPACE: Dramatiq's key namespace.
  TASKLENS_DEPLOY_QUEUE: the queue the workers consume.
  TASKLENS_DEPLOY_BACKLOG: a queue no worker consumes, so that it keeps ready messages.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

import tasklens

#: Actor names, the same in the test process.
OK_ACTOR, FLAKY_ACTOR, LATER_ACTOR = "deploy_ok", "deploy_flaky", "deploy_later"
#: Backoff before the flaky actor's one retry, in milliseconds.
RETRY_BACKOFF_MS = 10


def declare(broker: dramatiq.Broker, queue: str, backlog: str) -> dict[str, dramatiq.Actor]:
    """The test's actors on ``broker``: one that works, one that fails and is retried once then
    dead-lettered, and one on the backlog queue."""

    def deploy_ok(n: int) -> None:
        pass

    def deploy_flaky(n: int) -> None:
        raise ConnectionError("the payment gateway is down")

    def deploy_later(n: int) -> None:
        pass

    return {
        OK_ACTOR: dramatiq.actor(deploy_ok, queue_name=queue, broker=broker),
        FLAKY_ACTOR: dramatiq.actor(
            deploy_flaky,
            queue_name=queue,
            broker=broker,
            max_retries=1,
            min_backoff=RETRY_BACKOFF_MS,
            max_backoff=RETRY_BACKOFF_MS,
        ),
        LATER_ACTOR: dramatiq.actor(deploy_later, queue_name=backlog, broker=broker),
    }


if os.environ.get("TASKLENS_DEPLOY_QUEUE"):
    broker = RedisBroker(
        url=os.environ["TASKLENS_DEPLOY_BROKER_URL"], namespace=os.environ["TASKLENS_DEPLOY_NAMESPACE"]
    )
    dramatiq.set_broker(broker)
    tasklens.setup()
    actors = declare(broker, os.environ["TASKLENS_DEPLOY_QUEUE"], os.environ["TASKLENS_DEPLOY_BACKLOG"])
