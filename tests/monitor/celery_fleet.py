"""A real Celery worker on Redis sending its spans (arguments captured) to a real ``tasklens
monitor`` with a store and a token: what the run-again tests (API and browser) act on."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
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
    tasklens.setup(service_name="run-again-worker", capture_args=True)

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
"""


@dataclass(frozen=True)
class Fleet:
    app: CeleryApp
    monitor: str
    runs: redis.Redis
    prefix: str

    def failed_run(self, task: str, key: str) -> dict[str, Any]:
        """The failed run of ``task`` for ``key``, once the monitor has it."""

        def found() -> dict[str, Any] | None:
            response = httpx.get(
                f"{self.monitor}/api/runs", params={"actor": task, "status": "error"}, headers=AUTH
            )
            items = response.json()
            assert response.status_code == 200, items
            for item in items["items"]:
                trace = httpx.get(f"{self.monitor}/api/traces/{item['trace_id']}", headers=AUTH).json()
                for span in trace["spans"]:
                    if span["span_id"] == item["span_id"] and key in span["attributes"].get(
                        "celery.task.args", ""
                    ):
                        return dict(item)
            return None

        return wait_for(found, f"the failed {task} run for {key} in the monitor")


@pytest.fixture(scope="module")
def celery_fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    name = f"runagain{uuid.uuid4().hex[:10]}"
    directory = tmp_path_factory.mktemp("runagain")
    app = write_app(directory, name, redis_url, redis_url, extra=TASKS.format(redis_url=redis_url))
    port = free_port()
    monitor_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(directory), "OTEL_SDK_DISABLED": "true"}
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
        stderr=subprocess.PIPE,
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
        with celery_worker(app, f"w@{name}"):
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
        if monitor.stderr is not None:
            monitor.stderr.close()
        delete_prefixed(redis_url, name)
        client.close()


def send(fleet: Fleet, task: str, *args: Any, **kwargs: Any) -> None:
    celery_app = fleet.app.load()
    celery_app.send_task(task, args=args, kwargs=kwargs, queue=fleet.app.queue)


def run_again(fleet: Fleet, run: dict[str, Any], headers: dict[str, str] | None = AUTH) -> httpx.Response:
    return httpx.post(
        f"{fleet.monitor}/api/runs/{run['trace_id']}/{run['span_id']}/run-again", headers=headers, timeout=30
    )
