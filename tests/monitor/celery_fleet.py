"""A real Celery worker on Redis sending its spans (arguments captured) to a real ``tasklens
monitor`` with a store and a token: what the run-again tests (API and browser) act on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.celery_fixtures import CeleryApp, celery_worker, delete_prefixed, wait_for, write_app
from tests.monitor.processes import free_port, stop, wait_for_http

TOKEN = "run-again-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

TASKS = """
import os
import tasklens
# The worker only: the test process and the monitor import this module too.
if os.environ.get("RUN_AGAIN_WORKER"):
    tasklens.setup(service_name="run-again-worker", capture_args={capture!r})

RUNS = redis.Redis.from_url({redis_url!r})


@app.task(name="flaky")
def flaky(key, number, label="x"):
    # Fails the first time it runs for a key, succeeds after: "run again" shows the fix.
    if RUNS.rpush(key, number) == 1:
        raise ValueError("first attempt fails for " + key)
    return number


@app.task(name="secretive")
def secretive(key, password):
    RUNS.rpush(key, 1)
    raise PermissionError("always")


@app.task(name="broken")
def broken(key):
    RUNS.rpush(key, 1)
    raise ValueError("broken for " + key)
"""


@dataclass(frozen=True)
class Fleet:
    app: CeleryApp
    monitor: str
    runs: redis.Redis
    prefix: str

    def failed_run(self, task: str, key: str | None = None) -> dict[str, Any]:
        """The failed run of ``task`` (for ``key``, when its arguments were captured), once the
        monitor has it."""

        def found() -> dict[str, Any] | None:
            response = httpx.get(
                f"{self.monitor}/api/runs", params={"actor": task, "status": "error"}, headers=AUTH
            )
            items = response.json()
            assert response.status_code == 200, items
            for item in items["items"]:
                trace = httpx.get(f"{self.monitor}/api/traces/{item['trace_id']}", headers=AUTH).json()
                for span in trace["spans"]:
                    if span["span_id"] == item["span_id"] and (
                        key is None or key in span["attributes"].get("celery.task.args", "")
                    ):
                        return dict(item)
            return None

        return wait_for(found, f"the failed {task} run for {key} in the monitor")


@pytest.fixture(scope="module")
def celery_fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The fleet on Redis, arguments captured."""
    with running_fleet(redis_url, redis_url, tmp_path_factory.mktemp("runagain")) as fleet:
        yield fleet


@contextmanager
def running_fleet(
    url: str, redis_url: str, directory: Path, *, capture: bool = True, conf: str = ""
) -> Iterator[Fleet]:
    """A monitor (with ``--app``, a store and the token) and a worker on ``url``; runs are
    counted in Redis lists. ``conf`` is more app configuration (``app.conf...``)."""
    name = f"runagain{uuid.uuid4().hex[:10]}"
    extra = conf + TASKS.format(redis_url=redis_url, capture=capture)
    app = write_app(directory, name, url, redis_url, extra=extra)
    if not url.startswith("redis"):
        # Every declared queue exists before the worker (which consumes only ``name``) starts:
        # a dead-letter queue nobody declared would drop what is dead-lettered to it.
        celery_app = app.load()
        with celery_app.connection_for_write() as connection:
            for queue in celery_app.conf.task_queues or ():
                queue.bind(connection.default_channel).declare()
    port = free_port()
    monitor_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(directory), "OTEL_SDK_DISABLED": "true"}
    log = (directory / "monitor.log").open("wb")
    monitor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasklens",
            "monitor",
            "--app",
            app.module,
            "--auth-token",
            TOKEN,
            "--store",
            str(directory / "telemetry.db"),
            "--port",
            str(port),
        ],
        cwd=directory,
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe nobody reads: a full pipe would stall the monitor's logging.
        stderr=log,
    )
    worker_env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": monitor_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "RUN_AGAIN_WORKER": "1",
    }
    previous = {key: os.environ.get(key) for key in worker_env}
    os.environ.update(worker_env)
    client = redis.Redis.from_url(redis_url)
    try:
        wait_for_http(f"{monitor_url}/healthz", monitor)
        with celery_worker(app, f"w@{name}", "-Q", name):
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            yield Fleet(app=app, monitor=monitor_url, runs=client, prefix=name)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop(monitor)
        log.close()
        delete_prefixed(redis_url, name)
        client.close()
        if not url.startswith("redis"):
            celery_app = app.load()
            with celery_app.connection_for_write() as connection:
                channel = connection.default_channel
                for queue in celery_app.conf.task_queues or ():
                    channel.queue_delete(queue.name)
                    if queue.exchange is not None and queue.exchange.name:
                        channel.exchange_delete(queue.exchange.name)
            celery_app.close()


def send(fleet: Fleet, task: str, *args: Any, **kwargs: Any) -> None:
    celery_app = fleet.app.load()
    celery_app.send_task(task, args=args, kwargs=kwargs, queue=fleet.app.queue)


def run_again(fleet: Fleet, run: dict[str, Any], headers: dict[str, str] | None = AUTH) -> httpx.Response:
    return httpx.post(
        f"{fleet.monitor}/api/runs/{run['trace_id']}/{run['span_id']}/run-again", headers=headers, timeout=30
    )
