"""A Dramatiq application for the worker health tests: ``dramatiq tests.worker_health.apps.dramatiq_app``.

The broker, its namespace and the queue come from the environment the test sets.
"""

from __future__ import annotations

import os
import threading
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

import tasklens

broker = RedisBroker(url=os.environ["HEALTH_TEST_REDIS_URL"], namespace=os.environ["HEALTH_TEST_NAMESPACE"])
dramatiq.set_broker(broker)
tasklens.setup(service_name="worker-health-test")

QUEUE = os.environ["HEALTH_TEST_QUEUE"]
#: Never set: an actor waiting on it blocks its worker thread for good.
never = threading.Event()


@dramatiq.actor(queue_name=QUEUE, max_retries=0, time_limit=24 * 3600 * 1000)
def block_forever() -> None:
    never.wait()


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def work(seconds: float) -> None:
    time.sleep(seconds)
