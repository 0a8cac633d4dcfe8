from __future__ import annotations

from collections.abc import Iterator

import pytest


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
