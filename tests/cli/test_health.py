"""``tasklens health``: exit 0 healthy, 1 degraded, 2 unreachable, on the real Redis."""

from __future__ import annotations

import json

from tests.cli.conftest import Invoke
from tests.monitor.ground_truth import PopulatedQueue
from tests.monitor.processes import free_port, run_tasklens


def test_healthy_exits_0(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("health", "--broker", queue.url, "--max-backlog", "5", "--max-age", "3600")

    assert result.exit_code == 0, result.output
    assert result.output.startswith("healthy: redis://127.0.0.1:6379/0?namespace=")
    assert "1 queue, 5 pending" in result.output


def test_degraded_exits_1_with_the_reason(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("health", "--broker", queue.url, "--max-backlog", "4")

    assert result.exit_code == 1
    assert result.output.startswith("degraded: ")
    assert f"queue '{queue.queue}' has 5 pending messages (max 4)" in result.output


def test_too_few_workers_is_degraded(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("health", "--broker", queue.url, "--min-workers", "1000", "--json")

    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["status"] == "degraded"
    assert report["total_pending"] == 5
    assert report["reasons"][0].endswith("live workers (min 1000)")


def test_unreachable_exits_2_with_one_line() -> None:
    url = f"redis://:hunter22@127.0.0.1:{free_port()}/0"

    result = run_tasklens("health", "--broker", url, "--timeout", "2")

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/0" in lines[0]
    assert "hunter22" not in result.stderr + result.stdout


def test_unreachable_with_json_prints_an_unhealthy_report() -> None:
    result = run_tasklens(
        "health", "--broker", f"redis://127.0.0.1:{free_port()}/0", "--timeout", "2", "--json"
    )

    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["status"] == "unhealthy"
    assert report["queues"] == [] and report["workers"] is None
    assert "Connection refused" in report["reasons"][0]
    assert len(result.stderr.strip().splitlines()) == 1
