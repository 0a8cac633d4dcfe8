"""One monitor over Dramatiq's and Celery's brokers: every queue with its library, per-broker
health, dead letters routed to the broker that has the queue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tasklens.monitor import MonitorSettings, create_app
from tasklens.monitor.settings import BrokerSpec
from tests.monitor.conftest import AUTH, LOCAL_URL, TOKEN
from tests.several_brokers import Layout

#: A Redis nothing listens on.
DOWN_URL = "redis://127.0.0.1:1/0"


@pytest.fixture
def layout(redis_url: str, namespace: str) -> Iterator[Layout]:
    laid_out = Layout(redis_url, namespace)
    yield laid_out
    laid_out.close()


def _client(layout: Layout, *extra: BrokerSpec) -> TestClient:
    settings = layout.monitor_settings(*extra, cache_ttl=0.0, auth_token=TOKEN)
    return TestClient(create_app(settings), base_url=LOCAL_URL)


def _rows(body: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(q["name"], q["messaging_system"]): q for q in body["queues"]}


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_every_queue_with_its_library_and_counts(layout: Layout) -> None:
    with _client(layout) as client:
        body = client.get("/api/queues", headers=AUTH).json()
        metrics = client.get("/metrics", headers=AUTH).text
        health = client.get("/api/health", headers=AUTH)
        ready = client.get("/readyz", headers=AUTH)

    rows = _rows(body)
    assert list(rows) == [
        ("billing", "celery"),
        ("emails", "dramatiq"),
        ("shared", "celery"),
        ("shared", "dramatiq"),
    ]
    assert rows["shared", "dramatiq"]["ready"] == 3 and rows["shared", "dramatiq"]["dead"] == 2
    assert rows["emails", "dramatiq"]["ready"] == 1
    assert rows["shared", "celery"]["ready"] == 5 and rows["shared", "celery"]["dead"] is None
    assert rows["shared", "celery"]["priorities"] == {"0": 5, "3": 0, "6": 0, "9": 0}
    assert rows["billing", "celery"]["ready"] == 2
    assert [(b["messaging_system"], b["up"]) for b in body["brokers"]] == [
        ("dramatiq", True),
        ("celery", True),
    ]

    depth = _samples(metrics, "tasklens_queue_depth")

    def depth_of(system: str, queue: str) -> float | None:
        key = {"messaging_system": system, "messaging_destination_name": queue, "state": "ready"}
        return depth.get(tuple(sorted(key.items())))

    assert (depth_of("dramatiq", "shared"), depth_of("celery", "shared")) == (3, 5)
    assert (depth_of("celery", "billing"), depth_of("dramatiq", "emails")) == (2, 1)
    assert depth_of("celery", "emails") is None and depth_of("dramatiq", "billing") is None
    up = _samples(metrics, "tasklens_broker_up")
    assert sorted(up.values()) == [1.0, 1.0]
    assert {dict(key)["messaging_system"] for key in up} == {"dramatiq", "celery"}

    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert ready.status_code == 200 and len(ready.json()["brokers"]) == 2


def test_a_queue_both_libraries_have_is_chosen_by_messaging_system(layout: Layout) -> None:
    with _client(layout) as client:
        ambiguous = client.get("/api/queues/shared/dead-letters", headers=AUTH)
        dramatiq_page = client.get(
            "/api/queues/shared/dead-letters", params={"messaging_system": "dramatiq"}, headers=AUTH
        )
        celery_page = client.get(
            "/api/queues/shared/dead-letters", params={"messaging_system": "celery"}, headers=AUTH
        )
        one = client.get("/api/queues/shared", params={"messaging_system": "celery"}, headers=AUTH)
        unique = client.get("/api/queues/emails/dead-letters", headers=AUTH)
        ambiguous_purge = client.delete("/api/queues/shared/dead-letters", headers=AUTH)
        requeued = client.post(
            "/api/queues/shared/dead-letters/requeue",
            params={"messaging_system": "dramatiq"},
            json={"all": True},
            headers=AUTH,
        )
        after = _rows(client.get("/api/queues", headers=AUTH).json())

    assert ambiguous.status_code == 409
    assert ambiguous.json()["choices"] == ["celery", "dramatiq"]
    assert "messaging_system" in ambiguous.json()["error"]
    assert dramatiq_page.status_code == 200
    assert {item["message_id"] for item in dramatiq_page.json()["items"]} == set(layout.dead_ids)
    assert celery_page.status_code == 404  # Celery keeps no dead letters on Redis
    assert one.json()["ready"] == 5 and one.json()["messaging_system"] == "celery"
    assert unique.status_code == 200 and unique.json()["total"] == 0
    assert ambiguous_purge.status_code == 409
    assert requeued.json() == {"requeued": 2}
    assert after["shared", "dramatiq"]["dead"] == 0 and after["shared", "dramatiq"]["ready"] == 5
    assert after["shared", "celery"]["ready"] == 5


def test_a_broker_down_leaves_the_others_numbers_and_is_reported(layout: Layout) -> None:
    with _client(layout, BrokerSpec(DOWN_URL, library="dramatiq")) as client:
        body = client.get("/api/queues", headers=AUTH).json()
        metrics = client.get("/metrics", headers=AUTH).text
        health = client.get("/api/health", headers=AUTH)
        ready = client.get("/readyz", headers=AUTH)

    rows = _rows(body)
    assert rows["shared", "dramatiq"]["ready"] == 3 and rows["shared", "celery"]["ready"] == 5
    down = [b for b in body["brokers"] if not b["up"]]
    assert [b["broker"] for b in down] == [DOWN_URL] and down[0]["error"]
    up = {dict(key)["broker"]: value for key, value in _samples(metrics, "tasklens_broker_up").items()}
    assert up[DOWN_URL] == 0.0 and sorted(up.values()) == [0.0, 1.0, 1.0]
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert any(DOWN_URL in reason for reason in health.json()["reasons"])
    assert ready.status_code == 503 and DOWN_URL in ready.json()["error"]


def test_every_broker_down_is_unavailable() -> None:
    settings = MonitorSettings(
        brokers=(
            BrokerSpec(DOWN_URL, library="dramatiq"),
            BrokerSpec("redis://127.0.0.1:2/0", library="celery"),
        ),
        cache_ttl=0.0,
        broker_timeout=1.0,
    )
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        queues = client.get("/api/queues")
        health = client.get("/api/health")
        metrics = client.get("/metrics").text
    assert queues.status_code == 503 and "no broker answered" in queues.json()["error"]
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"
    assert "tasklens_broker_up 0.0" in metrics


def _dead_letters(client: TestClient, **params: str) -> Any:
    return client.get("/api/queues/shared/dead-letters", params=params, headers=AUTH)


@pytest.fixture
def second_namespace(redis_url: str, namespace: str) -> Iterator[tuple[str, list[str]]]:
    """One more Dramatiq namespace with a queue ``shared``: its URL and its one dead letter."""
    name = f"{namespace}-two"
    broker = RedisBroker(url=redis_url, namespace=name)

    @dramatiq.actor(queue_name="shared", broker=broker)
    def shared_task() -> None: ...

    shared_task.send()
    message = shared_task.message()
    client = redis.Redis.from_url(redis_url)
    client.zadd(f"{name}:shared.XQ", {message.message_id: time.time() * 1000})
    client.hset(f"{name}:shared.XQ.msgs", message.message_id, message.encode())
    yield f"{redis_url}?namespace={name}", [message.message_id]
    broker.close()
    keys = list(client.scan_iter(match=f"{name}:*"))
    if keys:
        client.unlink(*keys)
    client.close()


def test_two_brokers_of_one_library_are_chosen_by_broker(
    layout: Layout, second_namespace: tuple[str, list[str]]
) -> None:
    second_url, second_dead = second_namespace
    with _client(layout, BrokerSpec(second_url, library="dramatiq")) as client:
        listed = [part["broker"] for part in client.get("/api/queues", headers=AUTH).json()["brokers"]]
        ambiguous = _dead_letters(client, messaging_system="dramatiq")
        by_url = _dead_letters(client, broker=listed[2])
        by_index = _dead_letters(client, messaging_system="dramatiq", broker="0")
        unknown = _dead_letters(client, broker="7")
        purged = client.delete("/api/queues/shared/dead-letters", params={"broker": "2"}, headers=AUTH)
        first_after = _dead_letters(client, broker="0")

    assert listed == [layout.dramatiq_url, layout.redis_url, second_url]
    assert ambiguous.status_code == 409
    assert ambiguous.json()["choices"] == [layout.dramatiq_url, second_url]
    assert "broker=" in ambiguous.json()["error"]
    assert by_url.status_code == 200
    assert [item["message_id"] for item in by_url.json()["items"]] == second_dead
    assert by_index.status_code == 200
    assert {item["message_id"] for item in by_index.json()["items"]} == set(layout.dead_ids)
    assert unknown.status_code == 404 and second_url in unknown.json()["error"]
    assert purged.json() == {"purged": 1}
    assert first_after.json()["total"] == 2  # the other broker's dead letters are untouched


def test_one_broker_answers_404_for_another_librarys_queue(layout: Layout) -> None:
    settings = MonitorSettings(
        broker_url=layout.dramatiq_url, library="dramatiq", cache_ttl=0.0, auth_token=TOKEN
    )
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        celery = _dead_letters(client, messaging_system="celery")
        celery_purge = client.delete(
            "/api/queues/shared/dead-letters", params={"messaging_system": "celery"}, headers=AUTH
        )
        celery_queue = client.get("/api/queues/shared", params={"messaging_system": "celery"}, headers=AUTH)
        dramatiq_page = _dead_letters(client, messaging_system="dramatiq", broker="0")
        other_broker = _dead_letters(client, broker="1")
        after = client.get("/api/queues/shared", headers=AUTH).json()

    assert celery.status_code == 404
    assert "celery" in celery.json()["error"] and "holds dramatiq" in celery.json()["error"]
    assert celery_purge.status_code == 404
    assert celery_queue.status_code == 404
    assert dramatiq_page.status_code == 200 and dramatiq_page.json()["total"] == 2
    assert other_broker.status_code == 404
    assert after["dead"] == 2  # the refused purge purged nothing
