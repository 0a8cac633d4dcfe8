"""The commands on a real Celery broker (Redis): queues with priority steps and unacknowledged
tasks, workers by node name, health, and dead letters Celery on Redis does not keep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.celery_fixtures import CeleryRedisTruth, celery_redis_truth
from tests.cli.conftest import Invoke
from tests.monitor.processes import run_tasklens


@pytest.fixture
def truth(redis_url: str, unique_name: str, tmp_path: Path) -> Iterator[CeleryRedisTruth]:
    with celery_redis_truth(redis_url, unique_name, tmp_path) as laid_out:
        yield laid_out


def test_queues_json_and_table_equal_what_redis_holds(invoke: Invoke, truth: CeleryRedisTruth) -> None:
    result = invoke(
        "queues", "--broker", truth.app.url, "--transport-option", truth.transport_option, "--json"
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    held = truth.read()
    assert document["messaging_system"] == "celery"
    by_name = {entry["name"]: entry for entry in document["queues"]}
    for queue, expected in held.items():
        stats = by_name[queue]
        assert stats["priorities"] == {str(step): n for step, n in expected["priorities"].items()}
        assert (stats["ready"], stats["delayed"], stats["in_flight"], stats["dead"]) == (
            expected["ready"],
            expected["delayed"],
            expected["in_flight"],
            None,
        )
    assert document["workers"] == 1

    table = invoke("queues", "--broker", truth.app.url, "--transport-option", truth.transport_option)
    assert table.exit_code == 0, table.output
    row = next(line for line in table.output.splitlines() if f"{truth.prio_queue} " in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert cells[:5] == [truth.prio_queue, "6", "0", "0", "?"]
    assert cells[7] == "0:2 3:1 6:0 9:3"
    held_row = next(line for line in table.output.splitlines() if f"{truth.app.queue} " in line)
    held_cells = [cell.strip() for cell in held_row.strip("│┃ ").split("│")]
    assert held_cells[1:4] == ["2", "2", "2"]
    assert held_cells[8].endswith("/ 1h00m")  # oldest unacknowledged vs the visibility timeout
    assert "celery on redis://127.0.0.1:6379/0 · live workers: 1" in table.output


def test_the_app_gives_library_queues_and_options(truth: CeleryRedisTruth) -> None:
    # No --broker: the app's broker_url is read.
    result = run_tasklens(
        "queues",
        "--app",
        f"{truth.app.module}:app",
        "--json",
        env={"PYTHONPATH": str(truth.app.directory)},
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["messaging_system"] == "celery"
    (held,) = [entry for entry in document["queues"] if entry["name"] == truth.app.queue]
    assert held["ready"] == truth.read()[truth.app.queue]["ready"]


def test_workers_by_full_node_name(invoke: Invoke, truth: CeleryRedisTruth) -> None:
    result = invoke(
        "workers", "--broker", truth.app.url, "--transport-option", truth.transport_option, "--json"
    )

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["workers"] == 1
    (worker,) = document["items"]
    assert worker["hostname"] == truth.hostname
    assert worker["freq"] == 1
    assert worker["active"] == 1  # the blocking task

    table = invoke("workers", "--broker", truth.app.url, "--transport-option", truth.transport_option)
    assert truth.hostname in table.output and "live workers: 1" in table.output


def test_health_and_dead_letters(invoke: Invoke, truth: CeleryRedisTruth) -> None:
    health = invoke(
        "health",
        "--broker",
        truth.app.url,
        "--transport-option",
        truth.transport_option,
        "--max-backlog",
        "5",
    )
    assert health.exit_code == 1, health.output  # the priority queue holds 6 pending
    assert f"queue {truth.prio_queue!r} has 6 pending messages" in health.output

    dlq = invoke("dlq", "list", truth.app.queue, "--broker", truth.app.url, "--library", "celery")
    assert dlq.exit_code == 1
    assert "Celery on Redis" in dlq.output and "keeps none" in dlq.output


def test_an_app_that_does_not_import_is_one_line_and_exit_2(invoke: Invoke) -> None:
    result = invoke("queues", "--app", "no_such_celery_app_module")
    assert result.exit_code == 2
    assert result.output.strip().startswith("tasklens: cannot import app module 'no_such_celery_app_module'")


def test_unknown_library_and_bad_transport_option(invoke: Invoke) -> None:
    bad = invoke("queues", "--library", "rq")
    assert bad.exit_code == 2 and "rq" in bad.output
    malformed = invoke("queues", "--transport-option", "no-equals-sign")
    assert malformed.exit_code == 2 and "KEY=VALUE" in malformed.output
