"""A process killed (SIGKILL) in the middle of requeueing a large dead-letter queue: on Redis
every message is afterwards in exactly one place; on RabbitMQ none is lost."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any

import dramatiq
import pika
import pytest
import redis

from tasklens.brokers.redis import RedisInspector

#: The child process: requeue every dead letter, printing progress after each step.
REQUEUE_ALL = """
import sys, time
from tasklens.brokers import open_broker
from tasklens.brokers.redis import RedisInspector

kind, url, queue = sys.argv[1:4]
if kind == "redis":
    inspector = RedisInspector(url, requeue_batch_size=100)
else:
    inspector = open_broker(url, queues=[queue], library="dramatiq")

def progress(done, total):
    print(done, total, flush=True)
    if kind == "redis":
        time.sleep(0.005)  # leaves the parent time to kill it in the middle

inspector.requeue_dead(queue, progress=progress)
print("finished", flush=True)
"""


def requeue_and_kill(kind: str, url: str, queue: str, *, kill_after: int) -> int:
    """Run the requeue in a child, SIGKILL it once it reports ``kill_after`` moved; return how
    many it had reported."""
    child = subprocess.Popen(
        [sys.executable, "-c", REQUEUE_ALL, kind, url, queue],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert child.stdout is not None
    reported = 0
    deadline = time.monotonic() + 60
    try:
        while reported < kill_after:
            assert time.monotonic() < deadline, "the requeue did not progress"
            ready, _, _ = select.select([child.stdout], [], [], 1.0)
            if not ready:
                continue
            line = child.stdout.readline()
            assert line and line != "finished\n", f"the requeue ended before it was killed: {line!r}"
            reported = int(line.split()[0])
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return reported


def dramatiq_message(queue: str, number: int, **options: Any) -> dramatiq.Message[Any]:
    return dramatiq.Message(queue_name=queue, actor_name="crash", args=(number,), kwargs={}, options=options)


@pytest.mark.redis
@pytest.mark.slow
def test_redis_requeue_killed_midway_loses_and_duplicates_nothing(
    redis_url: str, namespace: str, unique_name: str
) -> None:
    count = 20_000
    queue = f"{unique_name}-q"
    xq, q = f"{namespace}:{queue}.XQ", f"{namespace}:{queue}"
    client = redis.Redis.from_url(redis_url)
    message_ids = set()
    died_at = int(time.time() * 1000)
    for start in range(0, count, 2000):
        pipe = client.pipeline(transaction=False)
        for number in range(start, start + 2000):
            redis_id = str(uuid.uuid4())
            message = dramatiq_message(queue, number, redis_message_id=redis_id)
            message_ids.add(message.message_id)
            pipe.zadd(xq, {redis_id: died_at + number})
            pipe.hset(f"{xq}.msgs", redis_id, message.encode())
        pipe.execute()

    url = f"{redis_url}?namespace={namespace}"
    reported = requeue_and_kill("redis", url, queue, kill_after=count // 4)

    dead = {key.decode() for key in client.zrange(xq, 0, -1)}
    dead_payloads = {k.decode(): v for k, v in client.hgetall(f"{xq}.msgs").items()}
    ready = [key.decode() for key in client.lrange(q, 0, -1)]
    ready_payloads = {k.decode(): v for k, v in client.hgetall(f"{q}.msgs").items()}
    client.close()

    assert reported <= len(ready) < count  # killed in the middle, after what it reported
    assert set(dead_payloads) == dead  # each dead id has its payload, and no payload is stray
    assert len(ready) == len(set(ready)) and set(ready_payloads) == set(ready)
    assert not dead & set(ready)  # nothing is both dead and requeued
    assert len(dead) + len(ready) == count
    payloads = list(dead_payloads.values()) + list(ready_payloads.values())
    seen = Counter(dramatiq.Message.decode(payload).message_id for payload in payloads)
    assert set(seen) == message_ids and set(seen.values()) == {1}

    # The requeued messages are as Dramatiq enqueues them: for this queue, under their Redis id.
    for redis_id in ready[:100]:
        message = dramatiq.Message.decode(ready_payloads[redis_id])
        assert message.queue_name == queue and message.options["redis_message_id"] == redis_id

    # Running it again finishes the job.
    inspector = RedisInspector(url)
    assert inspector.requeue_dead(queue) == len(dead)
    assert (inspector.snapshot().queue(queue).ready, inspector.snapshot().queue(queue).dead) == (count, 0)
    inspector.close()


@pytest.mark.rabbitmq
@pytest.mark.slow
def test_rabbitmq_requeue_killed_midway_loses_nothing(
    rabbitmq_url: str, rabbitmq_broker: Any, unique_name: str
) -> None:
    count = 1_000
    queue = f"{unique_name}-q"
    rabbitmq_broker.declare_queue(queue, ensure=True)
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.confirm_delivery()
    message_ids = set()
    for number in range(count):
        message = dramatiq_message(queue, number)
        message_ids.add(message.message_id)
        channel.basic_publish("", f"{queue}.XQ", message.encode(), pika.BasicProperties(delivery_mode=2))

    reported = requeue_and_kill("rabbitmq", rabbitmq_url, queue, kill_after=100)

    # RabbitMQ gives the killed connection's unacknowledged message back: wait for it.
    def total() -> int:
        return sum(
            channel.queue_declare(name, passive=True).method.message_count for name in (queue, f"{queue}.XQ")
        )

    deadline = time.monotonic() + 10
    while total() < count and time.monotonic() < deadline:
        time.sleep(0.05)

    found = {name: Counter[str]() for name in (queue, f"{queue}.XQ")}
    for name, seen in found.items():
        while True:
            method, _, body = channel.basic_get(name, auto_ack=True)
            if method is None:
                break
            seen[dramatiq.Message.decode(body).message_id] += 1
    connection.close()

    requeued, dead = found[queue], found[f"{queue}.XQ"]
    assert reported <= sum(requeued.values()) and dead  # killed in the middle
    assert set(requeued) | set(dead) == message_ids  # nothing lost
    # At-least-once: only the message between its confirm and its ack may be in both.
    assert len(set(requeued) & set(dead)) <= 1
    assert set(requeued.values()) | set(dead.values()) == {1}
