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
