"""``tasklens workers`` on Dramatiq's Redis layout: announced workers listed, else a count with a note."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.brokers.workers import running_worker, wait_until
from tests.cli.conftest import Invoke

pytestmark = pytest.mark.redis


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=redis_url, namespace=namespace)
    yield broker
    broker.close()
    broker.client.close()


def declare(broker: RedisBroker, queue: str) -> Any:
    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop() -> None:
        pass

    return noop


def test_announced_workers_are_listed_with_their_queues(
    invoke: Invoke, broker: RedisBroker, redis_url: str, namespace: str, unique_name: str
) -> None:
    broker.add_middleware(OpenTelemetryMiddleware())
    declare(broker, f"{unique_name}-emails")
    url = f"{redis_url}?namespace={namespace}"
    with running_worker(broker, threads=2):
        body = wait_until(
            lambda: json.loads(invoke("workers", "--broker", url, "--json").output),
            lambda body: body["workers"] == 1,
        )
        result = invoke("workers", "--broker", url)
    assert body["workers_note"] is None
    assert body["items"][0]["hostname"] == f"{os.getpid()}@{socket.gethostname()}"
    assert body["items"][0]["concurrency"] == 2
    assert result.exit_code == 0
    assert f"{os.getpid()}@" in result.output and f"{unique_name}-emails" in result.output
    assert "live workers: 1" in result.output and "producers too" not in result.output


def test_workers_without_tasklens_are_counted_with_a_note(
    invoke: Invoke, broker: RedisBroker, redis_url: str, namespace: str, unique_name: str
) -> None:
    declare(broker, f"{unique_name}-q")
    url = f"{redis_url}?namespace={namespace}"
    with running_worker(broker):
        body = wait_until(
            lambda: json.loads(invoke("workers", "--broker", url, "--json").output),
            lambda body: body["workers"] == 1,
        )
        workers = invoke("workers", "--broker", url)
        queues = invoke("queues", "--broker", url)
        health = invoke("health", "--broker", url)
    assert body["items"] is None and "producers too" in body["workers_note"]
    for result in (workers, queues, health):
        assert "producers too" in " ".join(result.output.split()), result.output
