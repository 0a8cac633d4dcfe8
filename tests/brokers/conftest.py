from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis


@pytest.fixture
def namespace(unique_name: str, redis_url: str) -> Iterator[str]:
    """A Dramatiq namespace of our own on the shared Redis, deleted afterwards."""
    yield unique_name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{unique_name}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])
    client.close()


@pytest.fixture
def redis_broker(redis_url: str, namespace: str) -> Iterator[object]:
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url, namespace=namespace)
    yield broker
    broker.close()
    broker.client.close()


@pytest.fixture
def rabbitmq_broker(rabbitmq_url: str) -> Iterator[object]:
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=rabbitmq_url, confirm_delivery=True)
    yield broker
    channel = broker.channel
    for queue in broker.get_declared_queues():
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            channel.queue_delete(name)
    broker.close()
