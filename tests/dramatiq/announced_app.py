"""A broker module for the ``dramatiq`` CLI in the announcement tests, configured by environment.

Environment:
  TASKLENS_TEST_REDIS_URL / TASKLENS_TEST_NAMESPACE: the Redis broker.
  TASKLENS_TEST_QUEUE: the queue of its one actor.
  TASKLENS_TEST_PLAIN: when ``1``, the broker has no tasklens middleware.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from tasklens.dramatiq import OpenTelemetryMiddleware

broker = RedisBroker(
    url=os.environ["TASKLENS_TEST_REDIS_URL"], namespace=os.environ["TASKLENS_TEST_NAMESPACE"]
)
if os.environ.get("TASKLENS_TEST_PLAIN") != "1":
    broker.add_middleware(OpenTelemetryMiddleware())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=os.environ["TASKLENS_TEST_QUEUE"])
def noop() -> None:
    pass
