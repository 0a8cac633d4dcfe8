"""The Celery app module the dashboard test gives ``celery -A``: ``tasklens.setup()`` at import.

``celery -A tests.deploy.celery_app worker`` works the test's tasks; ``python -m
tests.deploy.celery_app`` is the producer: it sends them and exits (``tasklens.setup()`` flushes
its metrics on exit).

Environment:
  TASKLENS_DEPLOY_BROKER_URL: the Redis URL.
  TASKLENS_DEPLOY_CELERY_PREFIX: the app's ``global_keyprefix``.
  TASKLENS_DEPLOY_CELERY_QUEUE: the queue the worker consumes.
  TASKLENS_DEPLOY_CELERY_BACKLOG: a queue no worker consumes, so that it keeps ready messages.
"""

from __future__ import annotations

import os

from celery import Celery

import tasklens

#: Task names, the same in the test process.
OK_TASK, FLAKY_TASK, LATER_TASK = "deploy_celery_ok", "deploy_celery_flaky", "deploy_celery_later"
#: Tasks the producer sends, per task.
OK_TASKS, FLAKY_TASKS, BACKLOG_TASKS = 20, 3, 3


if os.environ.get("TASKLENS_DEPLOY_CELERY_QUEUE"):
    app = Celery("deploy", broker=os.environ["TASKLENS_DEPLOY_BROKER_URL"])
    app.conf.broker_transport_options = {"global_keyprefix": os.environ["TASKLENS_DEPLOY_CELERY_PREFIX"]}
    app.conf.broker_connection_retry_on_startup = False
    app.conf.task_default_queue = os.environ["TASKLENS_DEPLOY_CELERY_QUEUE"]
    app.conf.task_routes = {LATER_TASK: {"queue": os.environ["TASKLENS_DEPLOY_CELERY_BACKLOG"]}}
    tasklens.setup()

    @app.task(name=OK_TASK)
    def deploy_celery_ok(n: int) -> None:
        pass

    # Retried once at once, then it fails for good.
    @app.task(
        name=FLAKY_TASK, autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 1, "countdown": 0}
    )
    def deploy_celery_flaky(n: int) -> None:
        raise ConnectionError("the payment gateway is down")

    @app.task(name=LATER_TASK)
    def deploy_celery_later(n: int) -> None:
        pass

    if __name__ == "__main__":
        for number in range(OK_TASKS):
            deploy_celery_ok.delay(number)
        for number in range(FLAKY_TASKS):
            deploy_celery_flaky.delay(number)
        for number in range(BACKLOG_TASKS):
            deploy_celery_later.delay(number)
        app.close()
