"""The receiver, store and dashboard API inside ``tasklens monitor``'s app and command line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from tasklens import semconv
from tasklens.brokers.base import QueueStats
from tasklens.cli.monitor import monitor
from tasklens.monitor import MonitorSettings, create_app
from tasklens.monitor.ingest.receiver import PROTOBUF
from tests.monitor.conftest import LOCAL_URL
from tests.monitor.fake_broker import FAKE_URL, FakeInspector
from tests.monitor.store.spans import SpanFactory

TOKEN = "telemetry-token"
#: Longest a test waits for the broker history to be recorded, in seconds.
WAIT = 10.0


def _app_client(**overrides: Any) -> TestClient:
    inspector = FakeInspector()
    inspector.add_queue(QueueStats("default", ready=7, delayed=1, in_flight=0, dead=0, oldest_age=3.0))
    inspector.add_dead("default", 2)
    settings = MonitorSettings(broker_url=FAKE_URL, cache_ttl=0.0, broker_timeout=2.0, **overrides)
    app = create_app(settings, open_inspector=lambda: inspector)
    if app.state.monitor.telemetry is not None:
        app.state.monitor.telemetry.snapshot_interval = 0.05
    return TestClient(app, base_url=LOCAL_URL)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _app_client(store_path=str(tmp_path / "telemetry.db")) as client:
        yield client


def _metrics_body() -> bytes:
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "billing-worker", "service.instance.id": "w1"}),
    )
    counter = provider.get_meter("tasklens.dramatiq").create_counter(semconv.CONSUMED_MESSAGES.name)
    counter.add(4, {semconv.DRAMATIQ_ACTOR_NAME: "charge_payment"})
    data = reader.get_metrics_data()
    provider.shutdown()
    return encode_metrics(data).SerializeToString()


def test_spans_sent_to_the_monitor_are_served_by_the_dashboard_api(client: TestClient) -> None:
    spans = SpanFactory()
    run = spans.run("charge_payment", "payments", error=RuntimeError("gateway down"))

    response = client.post(
        "/v1/traces", content=spans.request().SerializeToString(), headers={"Content-Type": PROTOBUF}
    )

    assert response.status_code == 200
    assert client.app.state.monitor.telemetry.store.writer.flush(timeout=10)  # type: ignore[attr-defined]
    (item,) = client.get("/api/runs", params={"status": "error"}).json()["items"]
    assert item["trace_id"] == run.trace_id
    assert client.get("/api/actors").json()["items"][0]["actor"] == "charge_payment"
    assert client.get(f"/api/traces/{run.trace_id}").status_code == 200
    invalid = client.get("/api/overview", params={"window": "soon"})
    assert invalid.status_code == 422
    assert "window" in invalid.json()["error"]
    misspelt = client.get("/api/runs", params={"stauts": "error"})
    assert misspelt.status_code == 422
    assert "'stauts'" in misspelt.json()["error"]
    repeated = client.get("/api/runs?status=ok&status=error")
    assert repeated.status_code == 422
    assert "'status'" in repeated.json()["error"]


def test_task_metrics_sent_to_the_monitor_appear_on_its_metrics(client: TestClient) -> None:
    response = client.post("/v1/metrics", content=_metrics_body(), headers={"Content-Type": PROTOBUF})

    assert response.status_code == 200
    text = client.get("/metrics").text
    assert 'messaging_client_consumed_messages_total{dramatiq_actor_name="charge_payment"' in text
    assert "tasklens_queue_depth{" in text


def test_the_broker_depth_is_recorded_for_the_queue_history(client: TestClient) -> None:
    deadline = time.monotonic() + WAIT
    items: list[dict[str, Any]] = []
    while not items and time.monotonic() < deadline:
        items = client.get("/api/queues/history", params={"queue": "default"}).json()["items"]
        time.sleep(0.05)

    assert {(item["state"], item["value"]) for item in items} >= {("ready", 7), ("dead", 2)}
    assert client.get("/api/overview").json()["workers"] == 2


def test_without_a_store_the_receiver_still_feeds_metrics(tmp_path: Path) -> None:
    with _app_client(store_path=None) as client:
        response = client.post("/v1/metrics", content=_metrics_body(), headers={"Content-Type": PROTOBUF})

        assert response.status_code == 200
        assert "messaging_client_consumed_messages_total" in client.get("/metrics").text
        assert client.get("/api/runs").status_code == 404
    assert list(tmp_path.iterdir()) == []


def test_an_exposed_monitor_needs_the_token_to_receive_and_to_read(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"store_path": str(tmp_path / "t.db"), "host": "0.0.0.0", "auth_token": TOKEN}
    with _app_client(**settings) as client:
        body = _metrics_body()
        refused = client.post("/v1/metrics", content=body, headers={"Content-Type": PROTOBUF})
        accepted = client.post(
            "/v1/metrics",
            content=body,
            headers={"Content-Type": PROTOBUF, "Authorization": f"Bearer {TOKEN}"},
        )
        unread = client.get("/api/runs")
        read = client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})

    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert (unread.status_code, read.status_code) == (401, 200)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--retention", "forever", "like 24h"),
        ("--max-store-size", "big", "like 1GB"),
        ("--forward", "collector", "http"),
    ],
)
def test_the_command_refuses_invalid_store_options(option: str, value: str, message: str) -> None:
    result = CliRunner().invoke(monitor, ["--broker", FAKE_URL, option, value])

    assert result.exit_code == 2
    assert message in result.output


def test_an_app_started_again_after_stopping_keeps_receiving_and_serving(tmp_path: Path) -> None:
    client = _app_client(store_path=str(tmp_path / "telemetry.db"))
    spans = SpanFactory()
    runs = []
    for _ in range(2):
        runs.append(spans.run())
        with client:
            response = client.post(
                "/v1/traces", content=spans.request().SerializeToString(), headers={"Content-Type": PROTOBUF}
            )
            assert response.status_code == 200
    with client:
        listed = {item["trace_id"] for item in client.get("/api/runs").json()["items"]}

    assert listed == {run.trace_id for run in runs}


def test_the_command_says_so_when_the_store_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")

    result = CliRunner().invoke(monitor, ["--broker", FAKE_URL, "--store", str(blocker / "telemetry.db")])

    assert result.exit_code == 1
    assert "cannot open the telemetry store" in result.output
    assert "--store" in result.output


def test_public_metrics_opens_metrics_and_health_but_not_ingest(tmp_path: Path) -> None:
    settings: dict[str, Any] = {
        "store_path": str(tmp_path / "t.db"),
        "host": "0.0.0.0",
        "auth_token": TOKEN,
        "public_metrics": True,
    }
    with _app_client(**settings) as client:
        refused = {
            path: client.post(path, content=b"", headers={"Content-Type": PROTOBUF}).status_code
            for path in ("/v1/traces", "/v1/metrics", "/v1/logs")
        }
        accepted = client.post(
            "/v1/metrics",
            content=_metrics_body(),
            headers={"Content-Type": PROTOBUF, "Authorization": f"Bearer {TOKEN}"},
        )
        scraped = client.get("/metrics")
        healthy = client.get("/healthz")

    assert refused == {"/v1/traces": 401, "/v1/metrics": 401, "/v1/logs": 401}
    assert accepted.status_code == 200
    assert (scraped.status_code, healthy.status_code) == (200, 200)
