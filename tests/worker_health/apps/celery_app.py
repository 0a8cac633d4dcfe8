"""A Celery application for the worker health tests: ``celery -A tests.worker_health.apps.celery_app worker``.

The broker and the queue come from the environment the test sets.
"""

from __future__ import annotations

import os
import time

from celery import Celery

import tasklens

app = Celery("worker_health_test", broker=os.environ["HEALTH_TEST_REDIS_URL"])
app.conf.task_default_queue = os.environ["HEALTH_TEST_QUEUE"]
app.conf.worker_prefetch_multiplier = 1
app.conf.broker_connection_retry_on_startup = True
tasklens.setup(service_name="worker-health-test")


@app.task(name="block_forever")
def block_forever() -> None:
    time.sleep(24 * 3600)


@app.task(name="work")
def work(seconds: float) -> None:
    time.sleep(seconds)
