"""A Dramatiq application that never calls tasklens: ``opentelemetry-instrument dramatiq ...``."""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker(url=os.environ["HEALTH_TEST_REDIS_URL"], namespace=os.environ["HEALTH_TEST_NAMESPACE"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=os.environ["HEALTH_TEST_QUEUE"])
def work() -> None:
    pass
