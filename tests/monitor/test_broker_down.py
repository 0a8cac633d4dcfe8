"""The real Redis behind a proxy the test cuts: /readyz and /metrics say so within the timeout,
and recover when the broker is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tasklens.monitor import MonitorSettings, create_app
from tests import services
from tests.monitor.conftest import LOCAL_URL
from tests.monitor.ground_truth import PopulatedQueue
from tests.monitor.tcp_proxy import TcpProxy

#: The monitor's broker timeout in these tests, in seconds.
TIMEOUT = 1.0
#: How long the monitor may take to see the broker back, in seconds.
RECOVERY_DEADLINE = 15.0


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy((services.REDIS_HOST, services.REDIS_PORT))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def monitor(proxy: TcpProxy, queue: PopulatedQueue) -> Iterator[TestClient]:
    url = f"redis://:pass-w0rd@127.0.0.1:{proxy.port}/0?namespace={queue.namespace}"
    settings = MonitorSettings(broker_url=url, broker_timeout=TIMEOUT, cache_ttl=0.0)
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        yield client


def wait_for_status(client: TestClient, path: str, status: int) -> None:
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while client.get(path).status_code != status:
        assert time.monotonic() < deadline, f"{path} did not answer {status} within {RECOVERY_DEADLINE} s"
        time.sleep(0.1)


def test_readyz_503_when_the_broker_refuses_then_recovers(proxy: TcpProxy, monitor: TestClient) -> None:
    assert monitor.get("/readyz").status_code == 200

    proxy.stop()
    started = time.monotonic()
    down = monitor.get("/readyz")

    assert down.status_code == 503
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert f"redis://:***@127.0.0.1:{proxy.port}/0" in down.json()["error"]
    assert "pass-w0rd" not in down.text
    metrics = monitor.get("/metrics").text
    assert "tasklens_broker_up 0.0" in metrics
    assert "tasklens_queue_depth{" not in metrics

    proxy.start()
    wait_for_status(monitor, "/readyz", 200)
    assert "tasklens_broker_up 1.0" in monitor.get("/metrics").text


def test_readyz_503_within_the_timeout_when_the_broker_hangs(proxy: TcpProxy, monitor: TestClient) -> None:
    assert monitor.get("/readyz").status_code == 200
    proxy.stop()
    proxy.start(hang=True)

    started = time.monotonic()
    down = monitor.get("/readyz")
    elapsed = time.monotonic() - started

    assert down.status_code == 503
    assert elapsed < TIMEOUT + 1.5
    health = monitor.get("/api/health")
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"

    proxy.stop()
    proxy.start()
    wait_for_status(monitor, "/readyz", 200)
