"""Real Dramatiq workers for the broker tests, dead letters made with them, polling with a deadline."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import dramatiq

from tasklens.brokers.base import BrokerInspector

T = TypeVar("T")

#: How long a test waits for a worker to reach a state, in seconds.
DEADLINE = 20.0


def wait_until(read: Callable[[], T], done: Callable[[T], bool], *, timeout: float = DEADLINE) -> T:
    """Poll ``read()`` until ``done(value)``; fail the test with the last value at the deadline."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s; last value: {value!r}")
        time.sleep(0.05)
        value = read()
    return value


@contextmanager
def running_worker(broker: dramatiq.Broker, *, threads: int = 1) -> Iterator[dramatiq.Worker]:
    """A worker that fetches one message at a time, so a blocked actor holds exactly one."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=50)
    # Without this a worker prefetches twice its threads and a waiting message would count as
    # in flight instead of ready.
    worker.queue_prefetch = threads
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10_000)


def dead_count(inspector: BrokerInspector, queue: str) -> int | None:
    return inspector.snapshot().queue(queue).dead


def make_dead(
    broker: dramatiq.Broker, inspector: BrokerInspector, queue: str, count: int, **options: Any
) -> list[str]:
    """Send ``count`` messages to an actor that always fails, run a worker until all are dead."""

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}-fail", max_retries=0, **options)
    def fail(number: int, *, label: str = "") -> None:
        raise RuntimeError(f"failed {number}")

    ids = [fail.send_with_options(args=(n,), kwargs={"label": f"n{n}"}).message_id for n in range(count)]
    with running_worker(broker):
        wait_until(lambda: dead_count(inspector, queue), lambda dead: dead == count)
    return ids


def closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
