"""Real Dramatiq workers for the broker tests, and polling with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import dramatiq

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
