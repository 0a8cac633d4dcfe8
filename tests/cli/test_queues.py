"""``tasklens queues`` on the real Redis: the table, JSON, --watch, a broker that is down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.cli.conftest import Invoke
from tests.monitor.ground_truth import PopulatedQueue
from tests.monitor.processes import SUBPROCESS_TIMEOUT, free_port, run_tasklens


def test_table_shows_each_state(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("queues", "--broker", queue.url)

    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "queue" in line and "ready" in line)
    for column in ("ready", "delayed", "in flight", "dead", "oldest age", "workers"):
        assert column in header
    row = next(line for line in result.output.splitlines() if queue.queue in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert cells[:5] == [queue.queue, "3", "2", "0", "5"]
    assert cells[6] == "?"  # Redis does not report consumers per queue
    assert "redis://127.0.0.1:6379/0?namespace=" in result.output


def test_json_has_exact_counts(invoke: Invoke, queue: PopulatedQueue) -> None:
    result = invoke("queues", "--broker", queue.url, "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    (stats,) = [entry for entry in document["queues"] if entry["name"] == queue.queue]
    assert (stats["ready"], stats["delayed"], stats["in_flight"], stats["dead"]) == (3, 2, 0, 5)
    assert stats["consumers"] is None
    assert stats["oldest_age"] >= 0


def test_broker_from_the_environment(queue: PopulatedQueue) -> None:
    result = run_tasklens("queues", "--json", env={"TASKLENS_BROKER_URL": queue.url})

    assert result.returncode == 0, result.stderr
    assert queue.queue in {entry["name"] for entry in json.loads(result.stdout)["queues"]}


def test_unreachable_broker_is_one_line_with_the_redacted_url_and_exit_2() -> None:
    url = f"redis://:hunter22@127.0.0.1:{free_port()}/0"

    result = run_tasklens("queues", "--broker", url, "--timeout", "2")

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "redis://:***@127.0.0.1:" in lines[0]
    assert "hunter22" not in result.stderr


def test_unsupported_url_is_one_line_and_exit_2() -> None:
    result = run_tasklens("queues", "--broker", "kafka://user:pw123@host:9092")

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unsupported broker URL kafka://user:***@host:9092" in result.stderr
    assert "pw123" not in result.stderr


def test_watch_reads_again_until_interrupted(queue: PopulatedQueue) -> None:
    command = [sys.executable, "-m", "tasklens", "queues", "--broker", queue.url, "--json", "--watch"]
    process = subprocess.Popen(
        [*command, "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        reads = [json.loads(process.stdout.readline()) for _ in range(2)]
        process.send_signal(signal.SIGINT)
        process.wait(timeout=SUBPROCESS_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    assert all(queue.queue in {entry["name"] for entry in read["queues"]} for read in reads)
    assert reads[0]["read_at"] < reads[1]["read_at"]


def test_help_has_an_example(invoke: Invoke) -> None:
    commands = [["queues"], ["health"], ["monitor"], ["dlq"]]
    for command in [*commands, *(["dlq", sub] for sub in ("list", "show", "requeue", "delete", "purge"))]:
        result = invoke(*command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output and "tasklens " in result.output, command


def test_tasklens_help_lists_the_commands(invoke: Invoke) -> None:
    output = invoke("--help").output

    for command in ("queues", "dlq", "health", "monitor"):
        assert f"\n  {command} " in output
