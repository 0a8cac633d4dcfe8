"""Running a failed Celery task again from the monitor: a real Celery worker on Redis sends its
spans (arguments captured) to a real ``tasklens monitor`` with a store; the action republishes
the failed task once, through Celery, and the new run is in the failed run's trace."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests.celery_fixtures import CeleryApp, celery_worker, delete_prefixed, wait_for, write_app
from tests.monitor.processes import free_port, stop, wait_for_http

pytestmark = pytest.mark.redis

TOKEN = "run-again-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Concurrent clicks on one failed run.
CLICKS = 8

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
def fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    import uuid

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


def test_without_the_token_it_is_refused_and_nothing_runs(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:refused"
    send(fleet, "flaky", key, 1)
    run = fleet.failed_run("flaky", key)
    for headers in (None, {"Authorization": "Bearer wrong"}):
        response = run_again(fleet, run, headers)
        assert response.status_code == 401
        assert "token" in response.json()["error"]
    # A marker task after: once it ran, a republished task would have too.
    marker = f"{fleet.prefix}:marker-refused"
    send(fleet, "flaky", marker, 1)
    wait_for(lambda: fleet.runs.llen(marker) == 1, "the marker task")
    assert fleet.runs.lrange(key, 0, -1) == [b"1"]


def test_run_again_republishes_the_task_with_its_arguments_in_the_failed_runs_trace(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:again"
    send(fleet, "flaky", key, 7, label="seven")
    run = fleet.failed_run("flaky", key)

    response = run_again(fleet, run)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["task"], body["queue"]) == ("flaky", fleet.app.queue)

    wait_for(lambda: fleet.runs.llen(key) == 2, "the task to run again")
    assert fleet.runs.lrange(key, 0, -1) == [b"7", b"7"]

    def new_run() -> dict[str, Any] | None:
        trace = httpx.get(f"{fleet.monitor}/api/traces/{run['trace_id']}", headers=AUTH).json()
        return next(
            (
                span
                for span in trace["spans"]
                if span["kind"] == "CONSUMER"
                and span["attributes"].get("messaging.message.id") == body["task_id"]
            ),
            None,
        )

    span = wait_for(new_run, "the new run in the failed run's trace")
    assert span["status"] != "ERROR"
    assert '"label":"seven"' in span["attributes"]["celery.task.args"]

    again = run_again(fleet, run)
    assert again.status_code == 409
    assert body["task_id"] in again.json()["error"]


def test_concurrent_double_clicks_publish_once(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:clicks"
    send(fleet, "flaky", key, 3)
    run = fleet.failed_run("flaky", key)

    with ThreadPoolExecutor(CLICKS) as pool:
        statuses = sorted(
            response.status_code for response in pool.map(lambda _: run_again(fleet, run), range(CLICKS))
        )
    assert statuses == [200] + [409] * (CLICKS - 1)

    wait_for(lambda: fleet.runs.llen(key) == 2, "the task to run again")
    marker = f"{fleet.prefix}:marker-clicks"
    send(fleet, "flaky", marker, 1)
    wait_for(lambda: fleet.runs.llen(marker) == 1, "the marker task")
    assert fleet.runs.llen(key) == 2


def test_runs_whose_arguments_cannot_be_replayed_are_refused_with_the_reason(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:secret"
    send(fleet, "secretive", key, password="hunter2")
    run = fleet.failed_run("secretive", key)
    response = run_again(fleet, run)
    assert response.status_code == 409
    assert "redacted" in response.json()["error"]

    ok_key = f"{fleet.prefix}:ok"
    send(fleet, "flaky", ok_key, 1)
    send(fleet, "flaky", ok_key, 2)  # the second run of the key succeeds
    wait_for(lambda: fleet.runs.llen(ok_key) == 2, "two runs")
    succeeded = wait_for(
        lambda: next(
            iter(
                httpx.get(
                    f"{fleet.monitor}/api/runs", params={"actor": "flaky", "status": "ok"}, headers=AUTH
                ).json()["items"]
            ),
            None,
        ),
        "a successful run in the monitor",
    )
    response = run_again(fleet, succeeded)
    assert response.status_code == 409
    assert "did not fail" in response.json()["error"]

    missing = run_again(fleet, {"trace_id": "0" * 31 + "1", "span_id": "0" * 15 + "1"})
    assert missing.status_code == 404
    assert httpx.post(f"{fleet.monitor}/api/runs/xyz/abc/run-again", headers=AUTH).status_code == 422


def test_the_action_is_in_the_openapi_schema_behind_the_token(fleet: Fleet) -> None:
    schema = httpx.get(f"{fleet.monitor}/openapi.json", headers=AUTH).json()
    operation = schema["paths"]["/api/runs/{trace_id}/{span_id}/run-again"]["post"]
    assert {} not in operation.get("security", [])
    assert "409" in operation["responses"]
