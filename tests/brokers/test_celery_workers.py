"""Celery workers from their heartbeats: full node names, gone when they stop heart-beating,
unknown (not 0) when heartbeats are disabled."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasklens.brokers.celery_workers import EXPIRE_WINDOW, HeartbeatListener, WorkerRegistry, pool_name
from tests.celery_fixtures import CeleryApp, celery_worker, delete_prefixed, wait_for, write_app

#: Extra time a vanished worker may take beyond its expiry: one read of the registry.
EXPIRY_GRACE = 1.0


@pytest.fixture
def app(redis_url: str, unique_name: str, tmp_path: Path) -> Iterator[CeleryApp]:
    files = write_app(tmp_path, unique_name, redis_url, redis_url)
    yield files
    delete_prefixed(redis_url, files.prefix)


@pytest.fixture
def listener(app: CeleryApp) -> Iterator[HeartbeatListener]:
    listening = HeartbeatListener(
        app.url, transport_options={"global_keyprefix": app.prefix}, listen_window=1.5
    )
    listening.start()
    yield listening
    listening.close()


def hostnames(listener: HeartbeatListener) -> list[str]:
    return [worker.hostname for worker in listener.census().workers or []]


def test_two_workers_on_one_host_are_two_and_a_killed_one_goes(
    app: CeleryApp, listener: HeartbeatListener, unique_name: str
) -> None:
    a, b = f"a@{unique_name}", f"b@{unique_name}"
    with celery_worker(app, a, "-Q", app.queue), celery_worker(app, b, "-Q", app.queue) as worker_b:
        wait_for(lambda: hostnames(listener) == [a, b], "both workers heart-beating")
        described = wait_for(
            lambda: (
                [w for w in listener.census().workers or [] if w.concurrency is not None] or None
                if len([w for w in listener.census().workers or [] if w.concurrency is not None]) == 2
                else None
            ),
            "pool and concurrency of both",
        )
        assert {(w.pool, w.concurrency) for w in described} == {("threads", 1)}
        census = listener.census()
        assert census.count == 2 and census.note is None
        (b_info,) = [w for w in census.workers or [] if w.hostname == b]
        assert b_info.pid == worker_b.pid and b_info.freq == 1

        worker_b.send_signal(signal.SIGKILL)
        worker_b.wait(timeout=10)
        expires = max(w.expires_at for w in listener.census().workers or [] if w.hostname == b)
        wait_for(
            lambda: hostnames(listener) == [a],
            f"b@ gone after its heartbeat timeout ({EXPIRE_WINDOW:g} x 1 s)",
            timeout=max(0.0, expires - time.time()) + EXPIRY_GRACE,
        )
        assert listener.census().count == 1


def test_heartbeats_disabled_is_unknown_not_zero(
    app: CeleryApp, listener: HeartbeatListener, unique_name: str
) -> None:
    with celery_worker(app, f"quiet@{unique_name}", "-Q", app.queue, "--without-heartbeat"):
        census = listener.census()
        assert census.count is None and census.workers is None
        assert census.note is not None and "events disabled" in census.note


def test_ping_counts_the_workers_when_asked(app: CeleryApp, unique_name: str) -> None:
    quiet = f"quiet@{unique_name}"
    listener = HeartbeatListener(
        app.url,
        transport_options={"global_keyprefix": app.prefix},
        listen_window=1.5,
        ping=True,
        ping_interval=0.5,
    )
    listener.start()
    try:
        with celery_worker(app, quiet, "-Q", app.queue, "--without-heartbeat"):
            # The worker answers pings once it consumes; until then it is not counted.
            census = wait_for(
                lambda: listener.census() if listener.census().count == 1 else None, "ping", timeout=30
            )
        assert [w.hostname for w in census.workers or []] == [quiet]
        assert census.note is not None and "inspect ping" in census.note
    finally:
        listener.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_registry_expires_by_the_heartbeat_frequency() -> None:
    clock = Clock()
    registry = WorkerRegistry(clock)
    assert registry.record({"hostname": "a@h", "freq": 5.0, "active": 1, "processed": 7})
    assert not registry.record({"hostname": "a@h", "freq": 5.0})  # known: no new inspect stats
    assert registry.record({"hostname": "b@h", "freq": 1.0})
    clock.now += 2.5  # beyond b's 2 x 1 s, within a's 2 x 5 s
    assert [w.hostname for w in registry.live()] == ["a@h"]
    registry.forget("a@h")
    assert registry.live() == [] and registry.heard_any


def test_an_event_without_hostname_is_ignored() -> None:
    registry = WorkerRegistry(Clock())
    assert not registry.record({"freq": 2.0})
    assert not registry.heard_any


@pytest.mark.parametrize(
    ("implementation", "name"),
    [
        ("celery.concurrency.prefork:TaskPool", "prefork"),
        ("celery.concurrency.thread:TaskPool", "threads"),
        ("celery.concurrency.solo:TaskPool", "solo"),
        (None, None),
    ],
)
def test_pool_names(implementation: object, name: str | None) -> None:
    assert pool_name(implementation) == name
