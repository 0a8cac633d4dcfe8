"""/metrics: names, labels, unknowns left out, a down broker, and promtool's verdict."""

from __future__ import annotations

import subprocess

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.monitor.fake_broker import FakeInspector
from tests.monitor.processes import require_program


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def depth(queue: str, state: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (
        "tasklens_queue_depth",
        (("messaging_destination_name", queue), ("messaging_system", "dramatiq"), ("state", state)),
    )


def test_metrics_expose_the_broker_gauges(client: TestClient) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = samples(response.text)
    assert values[depth("default", "ready")] == 3
    assert values[depth("default", "delayed")] == 2
    assert values[depth("default", "in_flight")] == 1
    assert values[depth("default", "dead")] == 4
    assert (
        values[
            (
                "tasklens_queue_oldest_message_age_seconds",
                (("messaging_destination_name", "default"), ("messaging_system", "dramatiq")),
            )
        ]
        == 12.5
    )
    assert values[("tasklens_workers", (("messaging_system", "dramatiq"),))] == 2
    assert values[("tasklens_broker_up", ())] == 1
    assert ("tasklens_broker_scrape_duration_seconds", ()) in values
    assert "# TYPE tasklens_queue_depth gauge" in response.text
    assert "# HELP tasklens_queue_depth Messages in a queue, by state" in response.text


def test_unknown_counts_are_left_out_not_zero(client: TestClient) -> None:
    values = samples(client.get("/metrics").text)

    assert values[depth("emails", "ready")] == 0
    assert depth("emails", "delayed") not in values
    assert depth("emails", "in_flight") not in values
    assert (
        "tasklens_queue_oldest_message_age_seconds",
        (("messaging_destination_name", "emails"), ("messaging_system", "dramatiq")),
    ) not in values


def test_unknown_worker_count_is_left_out(client: TestClient, fake: FakeInspector) -> None:
    fake.workers = None

    assert "tasklens_workers" not in client.get("/metrics").text


def test_broker_down_reports_up_0_and_no_queue_gauges(client: TestClient, fake: FakeInspector) -> None:
    fake.down = True

    response = client.get("/metrics")

    assert response.status_code == 200
    values = samples(response.text)
    assert values[("tasklens_broker_up", ())] == 0
    assert not any(name.startswith("dramatiq_") for name, _ in values)


def test_openmetrics_when_the_scraper_asks(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})

    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


@pytest.mark.parametrize("down", [False, True])
def test_promtool_check_metrics_passes(client: TestClient, fake: FakeInspector, down: bool) -> None:
    promtool = require_program("promtool")
    fake.down = down
    text = client.get("/metrics").text

    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""
