"""On RabbitMQ, what the broker cannot tell without consuming shows as unknown, never 0."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tasklens.monitor import MonitorSettings, create_app
from tests.cli.conftest import Invoke
from tests.monitor.conftest import LOCAL_URL
from tests.monitor.ground_truth import rabbitmq_queue
from tests.monitor.processes import SUBPROCESS_TIMEOUT


@pytest.fixture
def rabbit_queue(rabbitmq_url: str, unique_name: str) -> Iterator[str]:
    with rabbitmq_queue(rabbitmq_url, unique_name, ready=2, delayed=1) as name:
        yield name


def test_queues_json_reports_unknowns_as_null(invoke: Invoke, rabbitmq_url: str, rabbit_queue: str) -> None:
    result = invoke("queues", "--broker", rabbitmq_url, "--queue", rabbit_queue, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["broker"] == "amqp://guest:***@127.0.0.1:5672/%2F"
    (stats,) = document["queues"]
    assert (stats["ready"], stats["delayed"], stats["dead"]) == (2, 1, 0)
    assert stats["in_flight"] is None
    assert stats["oldest_age"] is None
    assert stats["consumers"] == 0


def test_queues_table_shows_unknowns_as_question_marks(
    invoke: Invoke, rabbitmq_url: str, rabbit_queue: str
) -> None:
    result = invoke("queues", "--broker", rabbitmq_url, "--queue", rabbit_queue)

    row = next(line for line in result.output.splitlines() if rabbit_queue in line)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells == [rabbit_queue, "2", "1", "?", "0", "?", "0"]


def test_metrics_leave_unknowns_out(rabbitmq_url: str, rabbit_queue: str) -> None:
    settings = MonitorSettings(broker_url=rabbitmq_url, queues=(rabbit_queue,), cache_ttl=0.0)
    with TestClient(create_app(settings), base_url=LOCAL_URL) as client:
        metrics = client.get("/metrics").text

    label = f'messaging_destination_name="{rabbit_queue}",messaging_system="dramatiq"'
    assert f'tasklens_queue_depth{{{label},state="ready"}} 2.0' in metrics
    assert f'tasklens_queue_depth{{{label},state="delayed"}} 1.0' in metrics
    assert f'tasklens_queue_depth{{{label},state="dead"}} 0.0' in metrics
    assert f'{label},state="in_flight"' not in metrics
    assert f"tasklens_queue_oldest_message_age_seconds{{{label}}}" not in metrics


def test_rabbitmq_without_any_queue_names_says_how_to_name_them(invoke: Invoke, rabbitmq_url: str) -> None:
    result = invoke("queues", "--broker", rabbitmq_url, "--library", "dramatiq")

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "amqp://guest:***@127.0.0.1:5672/%2F" in line
    assert "--queue" in line and "--app" in line and "--rabbitmq-management-url" in line


def test_queues_from_the_app_module(rabbitmq_url: str, rabbit_queue: str, tmp_path: Path) -> None:
    module = f"app_{rabbit_queue}"
    (tmp_path / f"{module}.py").write_text(
        "import dramatiq\n"
        "from dramatiq.brokers.rabbitmq import RabbitmqBroker\n"
        f"broker = RabbitmqBroker(url={rabbitmq_url!r})\n"
        "dramatiq.set_broker(broker)\n"
        f"@dramatiq.actor(queue_name={rabbit_queue!r})\n"
        "def work(n):\n"
        "    pass\n"
    )

    result = subprocess.run(
        [sys.executable, "-m", "tasklens", "queues", "--broker", rabbitmq_url, "--app", module, "--json"],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    (stats,) = json.loads(result.stdout)["queues"]
    assert (stats["name"], stats["ready"], stats["delayed"]) == (rabbit_queue, 2, 1)


def test_an_app_module_that_does_not_import_is_one_line_and_exit_2(invoke: Invoke, rabbitmq_url: str) -> None:
    result = invoke("queues", "--broker", rabbitmq_url, "--app", "no_such_module_here")

    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "no_such_module_here" in line
