"""The worker health endpoint inside a real Celery worker (prefork: the main process answers for
its pool processes) on Redis."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from tests.services import REDIS_HOST, REDIS_PORT
from tests.worker_health.workers import DEADLINE, MAX_BUSY, running_worker, tasklens_health

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CONCURRENCY = 2


@pytest.fixture
def app(redis_url: str) -> Iterator[dict[str, object]]:
    queue = f"tl-health-{uuid.uuid4().hex[:10]}"
    producer = Celery("producer", broker=redis_url)
    producer.conf.task_default_queue = queue
    env = {"HEALTH_TEST_REDIS_URL": redis_url, "HEALTH_TEST_QUEUE": queue}
    yield {"env": env, "producer": producer, "queue": queue}
    client = redis.Redis.from_url(redis_url)
    client.delete(queue, f"_kombu.binding.{queue}")
    client.close()
    producer.close()


def start(app: dict[str, object], tmp_path: Path):
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tests.worker_health.apps.celery_app",
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(CONCURRENCY),
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "INFO",
        "--hostname",
        f"{app['queue']}@%h",
    ]
    return running_worker(command, app["env"], tmp_path / "worker.log")  # type: ignore[arg-type]


def test_a_hung_prefork_worker_fails(app: dict[str, object], tmp_path: Path) -> None:
    producer: Celery = app["producer"]  # type: ignore[assignment]
    with start(app, tmp_path) as worker:
        idle = worker.wait_for(lambda status, body: status == 200, "the idle worker to answer healthy")
        assert idle["library"] == "celery"
        assert idle["checks"]["pool_processes"] == {"alive": CONCURRENCY, "total": CONCURRENCY}
        assert idle["checks"]["broker_connected"] is True
        probe = tasklens_health(worker.url)
        assert probe.returncode == 0, probe.stdout + probe.stderr

        for _ in range(CONCURRENCY):
            producer.send_task("block_forever")
        producer.send_task("work", args=[0.01])
        hung = worker.wait_for(lambda status, body: status == 503, "the hung worker to answer 503")
        assert any(
            f"all {CONCURRENCY} worker slots busy for more than {MAX_BUSY:g} s" in r for r in hung["reasons"]
        )
        assert [b["task"] for b in hung["checks"]["busy"]] == ["block_forever"] * CONCURRENCY
        probe = tasklens_health(worker.url)
        assert probe.returncode == 1
        assert probe.stdout.startswith("unhealthy: celery worker") and "busy for more than" in probe.stdout


def test_a_busy_prefork_worker_passes(app: dict[str, object], tmp_path: Path) -> None:
    producer: Celery = app["producer"]  # type: ignore[assignment]
    with start(app, tmp_path) as worker:
        worker.wait_for(lambda status, body: status == 200, "the worker to start")
        for _ in range(30):
            producer.send_task("work", args=[0.25])
        seen_busy = 0
        deadline = time.monotonic() + DEADLINE
        client = redis.Redis.from_url(app["env"]["HEALTH_TEST_REDIS_URL"])  # type: ignore[index]
        while True:
            status, body = worker.health()
            assert status == 200, body
            seen_busy += bool(body["checks"]["busy"])
            if client.llen(app["queue"]) == 0 and not body["checks"]["busy"] and seen_busy:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        client.close()
        assert body["checks"]["seconds_since_last_message"] is not None


def test_a_worker_that_lost_its_broker_fails_until_it_is_back(app: dict[str, object], tmp_path: Path) -> None:
    from tests.monitor.tcp_proxy import TcpProxy

    env = dict(app["env"])  # type: ignore[call-overload]
    proxy = TcpProxy((REDIS_HOST, REDIS_PORT))
    proxy.start()
    env["HEALTH_TEST_REDIS_URL"] = f"redis://{REDIS_HOST}:{proxy.port}/0"
    try:
        with start({**app, "env": env}, tmp_path) as worker:
            worker.wait_for(lambda status, body: status == 200, "the worker to start")
            proxy.stop()
            down = worker.wait_for(lambda status, body: status == 503, "the lost broker to fail the worker")
            assert any("no connection to the broker" in reason for reason in down["reasons"]), down
            proxy.start()
            worker.wait_for(lambda status, body: status == 200, "the worker to recover with its broker")
    finally:
        proxy.stop()
