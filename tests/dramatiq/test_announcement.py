"""Dramatiq worker processes on Redis announce themselves, and the Redis inspector counts them:
real ``dramatiq`` CLI processes and in-process workers against the real Redis."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot
from tasklens.brokers.redis import RedisInspector
from tasklens.dramatiq import OpenTelemetryMiddleware, announcement
from tests.brokers.workers import closed_port, running_worker, wait_until

pytestmark = pytest.mark.redis

ROOT = Path(__file__).resolve().parents[2]
DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")
#: Seconds between announcements in these tests: a killed worker expires after three.
INTERVAL = 0.5
#: How long a CLI may take to boot or stop, in seconds.
PROCESS_TIMEOUT = 60.0


@pytest.fixture
def queue(unique_name: str) -> str:
    return f"{unique_name}-q"


@pytest.fixture
def inspector(redis_url: str, namespace: str) -> Iterator[RedisInspector]:
    with RedisInspector(redis_url, namespace=namespace) as reader:
        yield reader


@pytest.fixture
def redis_broker(redis_url: str, namespace: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=redis_url, namespace=namespace)
    yield broker
    broker.close()
    broker.client.close()


@pytest.fixture
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(announcement.INTERVAL_ENV, str(INTERVAL))


def announcing_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "tasklens-announce"]


def announcement_keys(redis_client: Any, namespace: str) -> list[bytes]:
    names = (semconv.WORKERS_KEY, semconv.WORKER_DETAILS_KEY, semconv.WORKERS_ANNOUNCED_KEY)
    return [key for key in (f"{namespace}:{name}" for name in names) if redis_client.exists(key)]


@pytest.fixture
def start_cli(redis_url: str, namespace: str, queue: str, tmp_path: Path) -> Iterator[Any]:
    """``start_cli(processes, **env)``: the ``dramatiq`` CLI on ``announced_app``, 2 threads each."""
    started: list[subprocess.Popen[bytes]] = []

    def start(processes: int, **variables: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "TASKLENS_TEST_REDIS_URL": redis_url,
            "TASKLENS_TEST_NAMESPACE": namespace,
            "TASKLENS_TEST_QUEUE": queue,
            announcement.INTERVAL_ENV: str(INTERVAL),
            "OTEL_SDK_DISABLED": "true",
            **variables,
        }
        log = (tmp_path / f"cli-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [DRAMATIQ, "tests.dramatiq.announced_app", "-p", str(processes), "-t", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def producer(
    redis_url: str, namespace: str, queue: str, *, instrumented: bool = True
) -> tuple[RedisBroker, Any]:
    broker = RedisBroker(url=redis_url, namespace=namespace)
    if instrumented:
        broker.add_middleware(OpenTelemetryMiddleware())

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name="noop")
    def noop() -> None:
        pass

    return broker, noop


def test_cli_worker_processes_are_counted_and_listed_and_a_producer_is_not(
    start_cli: Any, inspector: RedisInspector, redis_client: Any, redis_url: str, namespace: str, queue: str
) -> None:
    cli = start_cli(2)
    broker, noop = producer(redis_url, namespace, queue)
    try:
        for _ in range(5):
            noop.send()
        snapshot = wait_until(
            inspector.snapshot,
            lambda s: s.workers == 2 and sum(w.processed or 0 for w in s.worker_list or []) == 5,
            timeout=PROCESS_TIMEOUT,
        )
        # The producer's broker id is in Dramatiq's heartbeats beside the two workers'.
        assert redis_client.zcard(f"{namespace}:__heartbeats__") >= 3
        assert not announcing_threads()
    finally:
        broker.close()

    assert snapshot.workers_note is None
    workers = snapshot.worker_list or []
    pids = {worker.pid for worker in workers}
    assert len(pids) == 2 and os.getpid() not in pids and cli.pid not in pids
    for worker in workers:
        assert worker.hostname == f"{worker.pid}@{socket.gethostname()}"
        assert worker.queues == (queue,)
        assert (worker.pool, worker.concurrency, worker.active) == ("threads", 2, 0)
        assert worker.software is not None and "dramatiq" in worker.software
        assert worker.last_heartbeat <= time.time() + 1 < worker.expires_at + 1

    cli.send_signal(signal.SIGTERM)
    assert cli.wait(PROCESS_TIMEOUT) == 0
    # Gone at once, not at an expiry: each worker removed its entry as it stopped.
    after = inspector.snapshot()
    assert (after.workers, after.worker_list, after.workers_note) == (0, [], None)


def test_a_killed_worker_process_is_gone_within_its_expiry(start_cli: Any, inspector: RedisInspector) -> None:
    start_cli(1)
    snapshot = wait_until(
        inspector.snapshot, lambda s: s.workers == 1 and bool(s.worker_list), timeout=PROCESS_TIMEOUT
    )
    (worker,) = snapshot.worker_list or []
    assert worker.pid is not None and worker.freq == INTERVAL

    os.kill(worker.pid, signal.SIGKILL)
    killed = time.monotonic()
    lifetime = INTERVAL * announcement.EXPIRY_BEATS
    after: BrokerSnapshot = wait_until(inspector.snapshot, lambda s: s.workers == 0, timeout=lifetime + 5)
    assert time.monotonic() - killed < lifetime + 1
    assert after.worker_list == [] and after.workers_note is None


def test_workers_not_instrumented_are_counted_from_fresh_heartbeats_with_a_note(
    start_cli: Any, inspector: RedisInspector, redis_client: Any, redis_url: str, namespace: str, queue: str
) -> None:
    start_cli(1, TASKLENS_TEST_PLAIN="1")
    wait_until(inspector.snapshot, lambda s: s.workers == 1, timeout=PROCESS_TIMEOUT)
    # A heartbeat older than the window (a process gone 30 s ago) is not counted.
    redis_client.zadd(f"{namespace}:__heartbeats__", {"gone": int(time.time() * 1000) - 30_000})
    broker, noop = producer(redis_url, namespace, queue, instrumented=False)
    try:
        noop.send()
        snapshot = wait_until(inspector.snapshot, lambda s: s.workers == 2)
    finally:
        broker.close()
    assert snapshot.worker_list is None
    assert snapshot.workers_note is not None
    assert "producers too" in snapshot.workers_note and "announce" in snapshot.workers_note
    assert not announcement_keys(redis_client, namespace)


def test_an_in_process_worker_announces_itself_until_it_stops(
    fast_beats: None, redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    redis_broker.add_middleware(OpenTelemetryMiddleware())

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop() -> None:
        pass

    with running_worker(redis_broker, threads=3):
        snapshot = wait_until(inspector.snapshot, lambda s: s.workers == 1 and bool(s.worker_list))
        (worker,) = snapshot.worker_list or []
        assert (worker.pid, worker.concurrency, worker.queues) == (os.getpid(), 3, (queue,))
        assert len(announcing_threads()) == 1
    assert inspector.snapshot().workers == 0
    assert not announcing_threads()


def test_a_producer_announces_nothing(
    redis_broker: Any, redis_client: Any, inspector: RedisInspector, namespace: str, queue: str
) -> None:
    redis_broker.add_middleware(OpenTelemetryMiddleware())

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop() -> None:
        pass

    for _ in range(3):
        noop.send()
    assert not announcing_threads()
    assert not announcement_keys(redis_client, namespace)
    snapshot = inspector.snapshot()
    assert snapshot.worker_list is None and snapshot.workers_note is not None


@pytest.mark.parametrize("how", ["option", "environment"])
def test_announcements_can_be_turned_off(
    how: str,
    monkeypatch: pytest.MonkeyPatch,
    redis_broker: Any,
    redis_client: Any,
    namespace: str,
    queue: str,
) -> None:
    if how == "option":
        redis_broker.add_middleware(OpenTelemetryMiddleware(announce_workers=False))
    else:
        monkeypatch.setenv(announcement.ANNOUNCE_ENV, "0")
        redis_broker.add_middleware(OpenTelemetryMiddleware())

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop() -> None:
        pass

    with running_worker(redis_broker) as worker:
        noop.send()
        redis_broker.join(queue, timeout=10_000)
        worker.join()
        assert not announcing_threads()
    assert not announcement_keys(redis_client, namespace)


def test_a_stub_broker_announces_nothing() -> None:
    broker = StubBroker()
    broker.add_middleware(OpenTelemetryMiddleware())
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        assert not announcing_threads()
    finally:
        worker.stop()


def test_redis_going_away_never_reaches_the_tasks(
    fast_beats: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    redis_broker: Any,
    queue: str,
) -> None:
    # The worker's own broker works; its announcements go to a port nothing listens on.
    unreachable = RedisBroker(url=f"redis://127.0.0.1:{closed_port()}/0")
    client = announcement._redis_client(unreachable)
    attempts: list[object] = []
    evalsha = client.evalsha

    def counted(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        return evalsha(*args, **kwargs)

    client.evalsha = counted
    monkeypatch.setattr(announcement, "_redis_client", lambda broker: client)
    redis_broker.add_middleware(OpenTelemetryMiddleware())
    done: list[int] = []

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-add", max_retries=0)
    def add(number: int) -> None:
        done.append(number)

    caplog.set_level(logging.INFO, logger=announcement.__name__)
    warnings = lambda: [r for r in caplog.records if r.name == announcement.__name__]  # noqa: E731
    with running_worker(redis_broker) as worker:
        wait_until(warnings, lambda records: len(records) >= 1)
        for number in range(5):
            add.send(number)
        redis_broker.join(queue, timeout=10_000)
        worker.join()
        assert sorted(done) == list(range(5))
        assert len(announcing_threads()) == 1
        wait_until(lambda: len(attempts), lambda count: count >= 4)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < announcement.STOP_TIMEOUT + 10
    # Every beat failed (one per interval): one warning for the whole outage.
    assert [r.levelno for r in warnings()] == [logging.WARNING]
    assert not announcing_threads()
    unreachable.close()
