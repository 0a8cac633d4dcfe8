"""/healthz, /readyz and /api/health: verdicts, thresholds, a broker that is down or hangs."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from tasklens.brokers.base import QueueStats
from tasklens.monitor import HealthThresholds
from tests.monitor.conftest import ClientFactory
from tests.monitor.fake_broker import FakeInspector


def test_healthz_answers_without_reading_the_broker(client: TestClient, fake: FakeInspector) -> None:
    fake.down = True

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert fake.snapshot_calls == 0


def test_readyz_is_200_when_the_broker_answers(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "broker": "redis://:***@fake-broker:6379/0"}


def test_readyz_is_503_when_the_broker_is_down_and_recovers(client: TestClient, fake: FakeInspector) -> None:
    fake.down = True

    down = client.get("/readyz")

    assert down.status_code == 503
    assert "redis://:***@fake-broker:6379/0" in down.json()["error"]
    assert "s3cret" not in down.text

    fake.down = False
    assert client.get("/readyz").status_code == 200


def test_readyz_answers_503_within_the_timeout_when_the_broker_hangs(
    make_client: ClientFactory, fake: FakeInspector
) -> None:
    fake.hang = threading.Event()
    client = make_client(broker_timeout=0.5, cache_ttl=0.0)

    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert "did not answer within 0.5 s" in response.json()["error"]
    assert elapsed < 2.0

    # A second probe while the read still hangs waits on that same read, not a new one.
    assert client.get("/readyz").status_code == 503
    assert fake.snapshot_calls == 1

    fake.hang.set()
    deadline = time.monotonic() + 5
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"


def test_api_health_healthy(client: TestClient) -> None:
    response = client.get("/api/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["broker"] == "redis://:***@fake-broker:6379/0"
    assert body["workers"] == 2
    assert body["total_pending"] == 5
    assert [queue["name"] for queue in body["queues"]] == ["default", "emails"]
    assert body["reasons"] == []


@pytest.mark.parametrize(
    ("thresholds", "reason"),
    [
        (HealthThresholds(max_backlog=4), "queue 'default' has 5 pending messages (max 4)"),
        (HealthThresholds(max_age=10), "queue 'default' oldest ready message is 12.5 s old (max 10 s)"),
        (HealthThresholds(min_workers=3), "2 live workers (min 3)"),
    ],
)
def test_api_health_degraded_past_a_threshold(
    make_client: ClientFactory, thresholds: HealthThresholds, reason: str
) -> None:
    response = make_client(thresholds=thresholds).get("/api/health")

    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["reasons"] == [reason]


def test_api_health_within_thresholds_is_healthy(make_client: ClientFactory) -> None:
    thresholds = HealthThresholds(max_backlog=5, max_age=12.5, min_workers=2)

    assert make_client(thresholds=thresholds).get("/api/health").json()["status"] == "healthy"


def test_unknown_counts_do_not_trip_thresholds(make_client: ClientFactory, fake: FakeInspector) -> None:
    fake.queues.clear()
    fake.add_queue(QueueStats("rabbit", ready=1, delayed=None, in_flight=None, dead=None, oldest_age=None))
    fake.workers = None
    thresholds = HealthThresholds(max_backlog=1, max_age=1, min_workers=1)

    body = make_client(thresholds=thresholds).get("/api/health").json()

    assert body["status"] == "healthy"
    assert body["workers"] is None


def test_api_health_unhealthy_when_the_broker_is_down(client: TestClient, fake: FakeInspector) -> None:
    fake.down = True

    response = client.get("/api/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["queues"] == [] and body["total_pending"] == 0 and body["workers"] is None
    assert "refused" in body["reasons"][0]


def test_reads_are_cached_for_the_ttl(make_client: ClientFactory, fake: FakeInspector) -> None:
    client = make_client(cache_ttl=60.0)

    for path in ("/readyz", "/api/health", "/metrics", "/api/queues", "/metrics"):
        assert client.get(path).status_code == 200

    assert fake.snapshot_calls == 1


def test_an_outage_is_logged_once_and_so_is_the_recovery(
    client: TestClient, fake: FakeInspector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="tasklens.monitor.watch.snapshots")
    fake.down = True
    for _ in range(3):
        assert client.get("/readyz").status_code == 503
    fake.down = False
    for _ in range(2):
        assert client.get("/readyz").status_code == 200

    messages = [
        record.getMessage() for record in caplog.records if record.name == "tasklens.monitor.watch.snapshots"
    ]
    assert messages == [
        "Broker redis://:***@fake-broker:6379/0 unavailable:"
        " broker redis://:***@fake-broker:6379/0 refused the connection",
        "Broker redis://:***@fake-broker:6379/0 answers again.",
    ]
