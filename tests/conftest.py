from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests import services


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.require_redis()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    return services.require_rabbitmq()


@pytest.fixture(scope="session")
def rabbitmq_management_url() -> str:
    return services.require_rabbitmq_management()


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses: for queues, namespaces and actors."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def namespace(unique_name: str, redis_url: str) -> Iterator[str]:
    """A Dramatiq namespace of our own on the shared Redis, deleted afterwards."""
    import redis

    yield unique_name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{unique_name}:*", count=1000))
    for start in range(0, len(keys), 1000):
        client.unlink(*keys[start : start + 1000])
    client.close()
