"""SnapshotReader: many concurrent scrapes within the interval cost one broker read."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tasklens.brokers import (
    BrokerSnapshot,
    BrokerUnavailable,
    DeadLetter,
    DeadLetterPage,
    QueueStats,
    open_broker,
)
from tasklens.brokers.base import BrokerInspector, Progress
from tasklens.monitor.watch.inspectors import SharedInspector
from tasklens.monitor.watch.snapshots import SnapshotReader
from tests.brokers.wire import recording_proxy


def reader_of(inspector: BrokerInspector, ttl: float) -> SnapshotReader:
    return SnapshotReader(
        SharedInspector(lambda: inspector), redacted_url=inspector.redacted_url, timeout=10, ttl=ttl
    )


class CountingInspector(BrokerInspector):
    """Counts reads; each takes ``delay`` seconds so that callers overlap; ``down`` makes it fail."""

    url = "redis://:pw@counting:6379/0"

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.reads = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.down = False
        self._lock = threading.Lock()

    @property
    def redacted_url(self) -> str:
        return "redis://:***@counting:6379/0"

    def snapshot(self) -> BrokerSnapshot:
        with self._lock:
            self.reads += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        if self.down:
            raise BrokerUnavailable(f"cannot reach {self.redacted_url}: Connection refused")
        stats = QueueStats("default", ready=self.reads, delayed=0, in_flight=0, dead=0, oldest_age=0.0)
        return BrokerSnapshot(queues=[stats], workers=1, read_at=time.time(), duration=self.delay)

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        return DeadLetterPage(items=[], total=0, offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        raise NotImplementedError

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        return 1

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        return 1

    def purge_dead(self, queue: str) -> int:
        return 1


def snapshot_concurrently(reader: SnapshotReader, callers: int) -> list[Any]:
    start = threading.Barrier(callers)

    def call() -> Any:
        start.wait(5)
        try:
            return reader.read()
        except BrokerUnavailable as e:
            return e

    with ThreadPoolExecutor(callers) as pool:
        return list(pool.map(lambda _: call(), range(callers)))


def test_concurrent_snapshots_within_the_interval_read_the_broker_once() -> None:
    counting = CountingInspector()
    cached = reader_of(counting, ttl=30)

    results = snapshot_concurrently(cached, 20)

    assert counting.reads == 1 and counting.most_in_flight == 1
    assert all(result is results[0] for result in results)
    assert cached.read() is results[0]
    assert counting.reads == 1


def test_the_next_interval_reads_again() -> None:
    counting = CountingInspector(delay=0)
    cached = reader_of(counting, ttl=0.2)
    first = cached.read()
    time.sleep(0.25)
    assert cached.read() is not first
    assert counting.reads == 2


def test_a_failed_read_is_cached_too() -> None:
    counting = CountingInspector()
    counting.down = True
    cached = reader_of(counting, ttl=30)

    results = snapshot_concurrently(cached, 10)

    assert counting.reads == 1
    assert all(isinstance(result, BrokerUnavailable) for result in results)
    assert str(results[0]) == "cannot reach redis://:***@counting:6379/0: Connection refused"


def test_invalidate_makes_the_next_caller_read_again() -> None:
    counting = CountingInspector(delay=0)
    cached = reader_of(counting, ttl=30)
    cached.read()
    cached.invalidate()
    cached.read()
    assert counting.reads == 2


@pytest.mark.redis
def test_concurrent_scrapes_of_real_redis_cost_one_round_of_reads(redis_url: str, namespace: str) -> None:
    with recording_proxy("127.0.0.1", 6379) as proxy:
        inspector = open_broker(f"redis://127.0.0.1:{proxy.port}/0?namespace={namespace}", queues=["q"])
        inspector.snapshot()  # connection set-up
        proxy.reset()
        results = snapshot_concurrently(reader_of(inspector, ttl=30), 20)
        inspector.close()
    assert all(result is results[0] for result in results)
    names = proxy.command_names()
    assert names.count("EVALSHA") == 1 and names.count("ZCOUNT") == 1
