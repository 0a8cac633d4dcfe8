"""What the monitor serves for a Celery snapshot (fast: an in-memory inspector)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tasklens.brokers.base import QueueStats, WorkerInfo
from tests.monitor.conftest import ClientFactory
from tests.monitor.fake_broker import FakeInspector
from tests.monitor.test_metrics import samples


def celery(fake: FakeInspector) -> None:
    fake.queues.clear()
    fake.messaging_system = "celery"
    fake.add_queue(
        QueueStats(
            "celery",
            ready=6,
            delayed=2,
            in_flight=3,
            dead=None,
            oldest_age=None,
            priorities={0: 2, 3: 1, 6: 0, 9: 3},
            oldest_unacked_age=3500.0,
            visibility_timeout=3600.0,
        )
    )


def labels(queue: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"messaging_destination_name": queue, "messaging_system": "celery", **extra}.items()))


def test_same_families_told_apart_by_messaging_system(client: TestClient, fake: FakeInspector) -> None:
    celery(fake)
    values = samples(client.get("/metrics").text)

    assert values[("tasklens_queue_depth", labels("celery", state="ready"))] == 6
    assert values[("tasklens_queue_depth", labels("celery", state="delayed"))] == 2
    assert values[("tasklens_queue_depth", labels("celery", state="in_flight"))] == 3
    assert ("tasklens_queue_depth", labels("celery", state="dead")) not in values  # unknown, not 0
    assert {
        step: values[("tasklens_queue_priority_ready", labels("celery", priority=step))] for step in "0369"
    } == {"0": 2, "3": 1, "6": 0, "9": 3}
    assert values[("tasklens_queue_oldest_unacked_age_seconds", labels("celery"))] == 3500
    assert values[("tasklens_queue_visibility_timeout_seconds", labels("celery"))] == 3600
    assert values[("tasklens_workers", (("messaging_system", "celery"),))] == 2


def test_dramatiq_has_no_celery_only_families(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert "tasklens_queue_priority_ready" not in text
    assert "tasklens_queue_oldest_unacked_age_seconds" not in text


def test_workers_unknown_when_heartbeats_are_disabled(client: TestClient, fake: FakeInspector) -> None:
    celery(fake)
    fake.workers = None
    fake.workers_note = (
        "no worker heartbeats: events disabled (--without-heartbeat) or no worker: workers unknown"
    )

    body = client.get("/api/workers").json()
    assert body["workers"] is None and body["items"] is None
    assert "events disabled" in body["workers_note"]
    assert "tasklens_workers" not in client.get("/metrics").text
    assert client.get("/api/queues").json()["workers_note"] == fake.workers_note


def test_workers_are_listed_with_their_node_names(client: TestClient, fake: FakeInspector) -> None:
    celery(fake)
    now = time.time()
    fake.worker_list = [
        WorkerInfo("a@host", now, now + 4, 2.0, active=1, processed=9, pool="prefork", concurrency=4, pid=10),
        WorkerInfo("b@host", now, now + 4, 2.0, active=0, processed=3, pool="threads", concurrency=8, pid=11),
    ]

    items = client.get("/api/workers").json()["items"]
    assert [(w["hostname"], w["pool"], w["concurrency"]) for w in items] == [
        ("a@host", "prefork", 4),
        ("b@host", "threads", 8),
    ]


def test_a_task_near_its_visibility_timeout_degrades_health(
    make_client: ClientFactory, fake: FakeInspector
) -> None:
    celery(fake)
    body = make_client().get("/api/health").json()
    assert body["status"] == "degraded"
    assert any("visibility timeout" in reason for reason in body["reasons"])
    assert body["queues"][0]["priorities"] == {"0": 2, "3": 1, "6": 0, "9": 3}


def test_an_unreachable_celery_broker_is_not_ready_and_up_0() -> None:
    from tasklens.monitor import MonitorSettings, create_app
    from tests.brokers.workers import closed_port

    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    settings = MonitorSettings(broker_url=url, library="celery", cache_ttl=0.0, broker_timeout=2.0)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        ready = client.get("/readyz")
        metrics = client.get("/metrics").text
        health = client.get("/api/health")

    assert ready.status_code == 503 and "hunter2" not in ready.text
    assert "tasklens_broker_up 0.0" in metrics and "tasklens_queue_depth{" not in metrics
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"


def test_the_otlp_export_carries_the_same_celery_gauges(fake: FakeInspector) -> None:
    from tests.monitor.test_otlp_export import collect

    celery(fake)
    points = collect(fake)

    queue = (("messaging.destination.name", "celery"), ("messaging.system", "celery"))
    assert points[("tasklens.queue.depth", (*queue, ("state", "delayed")))] == 2
    assert ("tasklens.queue.depth", (*queue, ("state", "dead"))) not in points
    assert points[("tasklens.queue.priority.ready", (*queue, ("priority", "9")))] == 3
    assert points[("tasklens.queue.oldest_unacked.age", queue)] == 3500
    assert points[("tasklens.queue.visibility_timeout", queue)] == 3600
    assert points[("tasklens.workers", (("messaging.system", "celery"),))] == 2
