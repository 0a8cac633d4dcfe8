from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tasklens.brokers.base import QueueStats
from tasklens.monitor import MonitorSettings, create_app
from tests.monitor.fake_broker import FAKE_URL, FakeInspector
from tests.monitor.ground_truth import queue as queue

#: Base URL of test clients: a name the monitor answers to (its Host check refuses others).
LOCAL_URL = "http://127.0.0.1"
#: The token the tests configure when a test needs one.
TOKEN = "test-token-123"
#: Headers that carry it.
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def fake() -> FakeInspector:
    inspector = FakeInspector()
    inspector.add_queue(QueueStats("default", ready=3, delayed=2, in_flight=1, dead=4, oldest_age=12.5))
    inspector.add_queue(QueueStats("emails", ready=0, delayed=None, in_flight=None, dead=0, oldest_age=None))
    inspector.add_dead("default", 4)
    return inspector


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(fake: FakeInspector) -> Iterator[ClientFactory]:
    """``make_client(**settings)``: a started app over ``fake``; the cache is off unless asked."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = replace(
            MonitorSettings(broker_url=FAKE_URL, cache_ttl=0.0, broker_timeout=2.0), **overrides
        )
        client = TestClient(create_app(settings, open_inspector=lambda: fake), base_url=LOCAL_URL)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    if fake.hang is not None:
        fake.hang.set()
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()


@pytest.fixture
def token_client(make_client: ClientFactory) -> TestClient:
    return make_client(auth_token=TOKEN)
