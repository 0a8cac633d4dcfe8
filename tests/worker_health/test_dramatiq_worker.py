"""The worker health endpoint inside a real ``dramatiq`` worker process on Redis."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from tests.services import REDIS_HOST, REDIS_PORT
from tests.worker_health.workers import DEADLINE, MAX_BUSY, running_worker, tasklens_health

pytestmark = [pytest.mark.redis, pytest.mark.slow]

THREADS = 2


@pytest.fixture
def app(redis_url: str) -> Iterator[dict[str, object]]:
    namespace = f"tl-health-{uuid.uuid4().hex[:10]}"
    queue = "jobs"
    broker = RedisBroker(url=redis_url, namespace=namespace)
    actors = {
        name: dramatiq.actor(lambda *a: None, broker=broker, actor_name=name, queue_name=queue)
        for name in ("block_forever", "work")
    }
    env = {"HEALTH_TEST_REDIS_URL": redis_url, "HEALTH_TEST_NAMESPACE": namespace, "HEALTH_TEST_QUEUE": queue}
    yield {"env": env, "actors": actors, "queue": queue}
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()
    broker.close()


def start(app: dict[str, object], tmp_path: Path, *, processes: int = 1, threads: int = THREADS):
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "tests.worker_health.apps.dramatiq_app",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    return running_worker(command, app["env"], tmp_path / "worker.log")  # type: ignore[arg-type]


def test_a_hung_worker_fails_and_the_exec_probe_agrees(app: dict[str, object], tmp_path: Path) -> None:
    actors = app["actors"]
    with start(app, tmp_path) as worker:
        idle = worker.wait_for(lambda status, body: status == 200, "the idle worker to answer healthy")
        assert idle["library"] == "dramatiq"
        assert idle["checks"]["worker_threads"] == {"alive": THREADS, "total": THREADS}
        assert idle["checks"]["consumers"]["alive"] >= 1
        assert idle["checks"]["broker"] == "ok"
        probe = tasklens_health(worker.url.removesuffix("/healthz"))
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert probe.stdout.startswith("healthy: dramatiq worker")

        for _ in range(THREADS):
            actors["block_forever"].send()  # type: ignore[index]
        for _ in range(5):
            actors["work"].send(0.01)  # type: ignore[index]
        hung = worker.wait_for(lambda status, body: status == 503, "the hung worker to answer 503")
        assert hung["status"] == "unhealthy"
        assert any(
            f"all {THREADS} worker slots busy for more than {MAX_BUSY:g} s" in r for r in hung["reasons"]
        )
        assert [b["actor"] for b in hung["checks"]["busy"]] == ["block_forever"] * THREADS

        probe = tasklens_health(worker.url)
        assert probe.returncode == 1
        lines = probe.stdout.strip().splitlines()
        assert (
            len(lines) == 1
            and lines[0].startswith("unhealthy: dramatiq worker")
            and "busy for more than" in lines[0]
        )


def test_a_busy_worker_passes(app: dict[str, object], tmp_path: Path) -> None:
    actors = app["actors"]
    with start(app, tmp_path) as worker:
        worker.wait_for(lambda status, body: status == 200, "the worker to start")
        # Steady work: each message well under the max busy time, for several times that long.
        for _ in range(60):
            actors["work"].send(0.25)  # type: ignore[index]
        seen_busy = 0
        deadline = time.monotonic() + DEADLINE
        while True:
            status, body = worker.health()
            assert status == 200, body
            seen_busy += bool(body["checks"]["busy"])
            if body["checks"]["processed"] >= 60:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.1)
        assert seen_busy > 0
        assert body["checks"]["seconds_since_last_message"] is not None


def test_a_worker_that_lost_its_broker_fails_until_it_is_back(app: dict[str, object], tmp_path: Path) -> None:
    from tests.monitor.tcp_proxy import TcpProxy

    env = dict(app["env"])  # type: ignore[call-overload]
    proxy = TcpProxy((REDIS_HOST, REDIS_PORT))
    proxy.start()
    env["HEALTH_TEST_REDIS_URL"] = f"redis://127.0.0.1:{proxy.port}/0"
    try:
        with start({**app, "env": env}, tmp_path) as worker:
            worker.wait_for(lambda status, body: status == 200, "the worker to start")
            proxy.stop()
            down = worker.wait_for(lambda status, body: status == 503, "the lost broker to fail the worker")
            assert any("the broker is unreachable" in reason for reason in down["reasons"]), down
            proxy.start()
            worker.wait_for(lambda status, body: status == 200, "the worker to recover with its broker")
    finally:
        proxy.stop()


def test_one_endpoint_answers_for_every_worker_process(app: dict[str, object], tmp_path: Path) -> None:
    actors = app["actors"]
    with start(app, tmp_path, processes=2, threads=1) as worker:
        idle = worker.wait_for(
            lambda status, body: status == 200 and len(body["checks"]["sibling_processes"]) == 1,
            "both worker processes to report healthy",
        )
        [sibling] = idle["checks"]["sibling_processes"]
        assert sibling["pid"] != idle["checks"]["pid"]

        # Each process prefetches at most two messages: four blocking ones hang at least one
        # process, whichever of the two it is.
        for _ in range(4):
            actors["block_forever"].send()  # type: ignore[index]
        hung = worker.wait_for(lambda status, body: status == 503, "a hung worker process to fail the probe")
        assert any("all 1 worker slots busy for more than" in reason for reason in hung["reasons"]), hung


def test_served_under_opentelemetry_instrument_too(app: dict[str, object], tmp_path: Path) -> None:
    import shutil

    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    assert instrument is not None
    env = {
        **app["env"],  # type: ignore[dict-item]
        "OTEL_SDK_DISABLED": "false",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    command = [
        instrument,
        sys.executable,
        "-m",
        "dramatiq",
        "tests.worker_health.apps.plain_app",
        "-p",
        "1",
        "-t",
        "1",
    ]
    with running_worker(command, env, tmp_path / "worker.log") as worker:
        body = worker.wait_for(lambda status, body: status == 200, "the instrumented worker to answer")
        assert body["library"] == "dramatiq"
