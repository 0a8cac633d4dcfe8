"""Queues with known contents on the real Redis, laid out by Dramatiq itself.

``populated_queue`` sends messages through a Dramatiq RedisBroker in a namespace of its own:
``dead`` messages go through a real worker whose actor fails twice (one retry, so the dead letter
carries the first attempt's traceback); then, with no worker running, ``ready`` messages wait
and ``delayed`` ones are scheduled an hour ahead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

#: How long the worker may take to dead-letter the failing messages, in seconds.
DEAD_LETTER_DEADLINE = 30.0
#: Longest a message is held in flight, in seconds (the test releases it sooner).
HOLD_LIMIT = 120.0
#: How far ahead delayed messages are scheduled, in milliseconds.
DELAY_MS = 3_600_000


@dataclass(frozen=True)
class PopulatedQueue:
    """What was put where.

    Parameters:
      url(str): The broker URL to give tasklens (carries ``?namespace=``).
      namespace(str): Dramatiq's key namespace.
      queue(str): The queue's name.
      ready(int), delayed(int), dead(int): How many messages are in each state.
      dead_ids(list[str]): The dead messages' ids.
    """

    url: str
    namespace: str
    queue: str
    ready: int
    delayed: int
    dead: int
    dead_ids: list[str]

    def dead_count(self, client: redis.Redis) -> int:
        return int(client.zcard(f"{self.namespace}:{self.queue}.XQ"))

    def ready_count(self, client: redis.Redis) -> int:
        return int(client.llen(f"{self.namespace}:{self.queue}"))


def _fail(number: int) -> None:
    raise ValueError(f"boom {number}")


def _succeed(number: int) -> None:
    return None


@contextmanager
def populated_queue(
    redis_url: str, name: str, *, ready: int = 0, delayed: int = 0, dead: int = 0, in_flight: bool = False
) -> Iterator[PopulatedQueue]:
    """A queue named ``name`` in namespace ``name`` with these counts; every key is deleted after.

    Parameters:
      redis_url(str): The test Redis.
      name(str): A name no other test uses.
      ready(int), delayed(int), dead(int): How many messages to leave in each state.
      in_flight(bool): Hold one more message in flight: a worker (one thread, one message
        prefetched) runs an actor that waits until the block ends.
    """
    broker = RedisBroker(url=redis_url, namespace=name)
    client = redis.Redis.from_url(redis_url)
    release = threading.Event()
    holder: dramatiq.Worker | None = None
    try:
        fail = dramatiq.actor(
            _fail,
            broker=broker,
            queue_name=name,
            actor_name=f"{name}_fail",
            max_retries=1,
            min_backoff=1,
            max_backoff=10,
        )
        succeed = dramatiq.actor(_succeed, broker=broker, queue_name=name, actor_name=f"{name}_ok")
        dead_ids = [fail.send(i).message_id for i in range(dead)]
        if dead:
            _dead_letter(broker, client, f"{name}:{name}.XQ", dead)
        if in_flight:
            holder = _hold_one(broker, name, release)
        for i in range(ready):
            succeed.send(i)
        for i in range(delayed):
            succeed.send_with_options(args=(i,), delay=DELAY_MS)
        yield PopulatedQueue(
            url=f"{redis_url}?namespace={name}",
            namespace=name,
            queue=name,
            ready=ready,
            delayed=delayed,
            dead=dead,
            dead_ids=dead_ids,
        )
    finally:
        release.set()
        if holder is not None:
            holder.stop(timeout=10_000)
        broker.close()
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            client.unlink(*keys)
        client.close()


def _hold_one(broker: RedisBroker, name: str, release: threading.Event) -> dramatiq.Worker:
    started = threading.Event()

    def hold() -> None:
        started.set()
        release.wait(timeout=HOLD_LIMIT)

    holding = dramatiq.actor(hold, broker=broker, queue_name=name, actor_name=f"{name}_hold", time_limit=None)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    # One message fetched at a time: the held one. Ready messages sent later stay ready.
    worker.queue_prefetch = 1
    worker.start()
    holding.send()
    assert started.wait(timeout=DEAD_LETTER_DEADLINE), "the worker did not start the held message"
    return worker


def _dead_letter(broker: RedisBroker, client: redis.Redis, dead_key: str, count: int) -> None:
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + DEAD_LETTER_DEADLINE
        while client.zcard(dead_key) < count:
            assert time.monotonic() < deadline, (
                f"the worker dead-lettered {client.zcard(dead_key)} of {count}"
            )
            time.sleep(0.05)
    finally:
        worker.stop(timeout=10_000)


@pytest.fixture
def queue(redis_url: str, unique_name: str) -> Iterator[PopulatedQueue]:
    """A queue with 3 ready, 2 delayed and 5 dead messages."""
    with populated_queue(redis_url, unique_name, ready=3, delayed=2, dead=5) as populated:
        yield populated


@contextmanager
def rabbitmq_queue(rabbitmq_url: str, name: str, *, ready: int = 0, delayed: int = 0) -> Iterator[str]:
    """A RabbitMQ queue named ``name`` with ``ready`` waiting and ``delayed`` scheduled messages,
    declared by Dramatiq; its three queues are deleted after. Yields the queue's name.

    Parameters:
      rabbitmq_url(str): The test RabbitMQ.
      name(str): A name no other test uses.
      ready(int), delayed(int): How many messages to leave in each state.
    """
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    try:
        succeed = dramatiq.actor(_succeed, broker=broker, queue_name=name, actor_name=f"{name}_ok")
        for i in range(ready):
            succeed.send(i)
        for i in range(delayed):
            succeed.send_with_options(args=(i,), delay=DELAY_MS)
        yield name
    finally:
        channel = broker.channel
        for queue_name in (name, f"{name}.DQ", f"{name}.XQ"):
            channel.queue_delete(queue_name)
        broker.close()
