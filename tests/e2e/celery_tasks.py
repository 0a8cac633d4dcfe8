"""The Celery app and task of the end-to-end tests, configured by environment variables.

The worker and beat modules (``celery_app_with_setup``, ``celery_app_plain``) build the app from
the environment the test gives the ``celery`` CLI; the test process builds the same app, with
:func:`make_app`, to send the tasks (it never runs them).

Environment:
  TASKLENS_E2E_BROKER_URL: the broker's URL (Redis or RabbitMQ).
  TASKLENS_E2E_QUEUE: the queue the tasks go to.
  TASKLENS_E2E_COUNTER_URL / TASKLENS_E2E_COUNTER_KEY: a Redis key counting task runs (read
    when the task runs).
  TASKLENS_E2E_LOG: when ``1``, the task logs :data:`LOG_LINE` for each run.
  TASKLENS_E2E_BEAT_INTERVAL: when set, beat sends the task every that many seconds.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import redis
from celery import Celery

#: The task's name, the same on both sides.
TASK_NAME = "e2e.celery_work"
#: What the task is asked to do (its ``mode`` argument).
MODE_WORK, MODE_HANG, MODE_DIE, MODE_WAIT_FOR_SIGNAL = "work", "hang", "die", "wait_for_signal"
#: How long a hanging task sleeps, in seconds: far past any time limit a test sets.
HANG_S = 120.0
#: Exit code of a task that kills its own pool process.
DIE_EXIT_CODE = 3
#: Where a task waiting for a signal stores its process id: the counter's key with this suffix.
PID_SUFFIX = ":pid"
#: What the task logs for each run when ``TASKLENS_E2E_LOG=1``.
LOG_LINE = "e2e celery work done"

logger = logging.getLogger(__name__)

_counter: redis.Redis | None = None


def work(n: int, mode: str = MODE_WORK) -> int:
    """The task: count the run in Redis, then do what ``mode`` says."""
    global _counter
    if _counter is None:  # one client per pool process, made after the fork
        _counter = redis.Redis.from_url(os.environ["TASKLENS_E2E_COUNTER_URL"])
    _counter.incr(os.environ["TASKLENS_E2E_COUNTER_KEY"])
    if os.environ.get("TASKLENS_E2E_LOG") == "1":
        logger.warning(LOG_LINE)
    if mode == MODE_WAIT_FOR_SIGNAL:
        # Tell the test which process to signal.
        _counter.set(os.environ["TASKLENS_E2E_COUNTER_KEY"] + PID_SUFFIX, os.getpid())
        time.sleep(HANG_S)
    elif mode == MODE_HANG:
        time.sleep(HANG_S)
    elif mode == MODE_DIE:
        os._exit(DIE_EXIT_CODE)
    return n


def make_app(broker_url: str, queue: str) -> Celery:
    """The app, with :func:`work` registered as :data:`TASK_NAME`."""
    app = Celery("tasklens_e2e", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
        # Nothing else in the tests' broker: no pidbox or event queues left behind.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_ignore_result=True,
    )
    app.task(name=TASK_NAME)(work)
    return app


def app_from_env() -> Celery:
    """:func:`make_app` with what the environment names, and beat's schedule when asked for."""
    app = make_app(os.environ["TASKLENS_E2E_BROKER_URL"], os.environ["TASKLENS_E2E_QUEUE"])
    interval = os.environ.get("TASKLENS_E2E_BEAT_INTERVAL")
    if interval:
        schedule: dict[str, Any] = {
            "e2e-tick": {"task": TASK_NAME, "schedule": float(interval), "args": (0,)}
        }
        app.conf.beat_schedule = schedule
    return app
