"""The CLI as a pipe or an 80-column terminal gets it, on the real Redis: one line per dead letter,
short ids that resolve, the trace of a dead letter, queue lists that stay put, ``--queue`` that
narrows, and health that sees dead letters pile up."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dramatiq
import pytest
from click.testing import CliRunner, Result
from dramatiq.brokers.redis import RedisBroker
from opentelemetry.sdk.trace import TracerProvider

from tasklens.brokers.redis import RedisInspector
from tasklens.cli import main
from tasklens.dramatiq import OpenTelemetryMiddleware
from tests.brokers.workers import dead_count, running_worker, wait_until
from tests.monitor.ground_truth import PopulatedQueue

#: What a pipe gets: rich falls back to 80 columns when the output is not a terminal.
COLUMNS = "80"


def narrow(*args: str) -> Result:
    """Run a tasklens command with its output going to an 80-column pipe."""
    runner = CliRunner(env={"COLUMNS": COLUMNS})
    return runner.invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def broker(redis_url: str, namespace: str) -> Iterator[RedisBroker]:
    """A Dramatiq broker in a namespace of its own (named ``unique_name``), deleted afterwards."""
    broker = RedisBroker(url=redis_url, namespace=namespace)
    yield broker
    broker.close()


def test_dlq_list_at_80_columns_is_one_line_per_dead_letter_with_ids_show_takes(
    queue: PopulatedQueue,
) -> None:
    result = narrow("dlq", "list", queue.queue, "--broker", queue.url)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), result.output
    for message_id in queue.dead_ids:
        rows = [line for line in lines if message_id[:13] + "…" in line]
        assert len(rows) == 1, result.output
        assert "ValueError" in rows[0]
    shown = next(line for line in lines if queue.dead_ids[0][:13] in line).split("│")[1].strip()

    shown_letter = narrow("dlq", "show", queue.queue, shown, "--broker", queue.url)

    assert shown_letter.exit_code == 0, shown_letter.output
    assert f"message id:  {queue.dead_ids[0]}" in shown_letter.output


def test_dlq_show_names_the_trace_and_links_the_dashboard(
    broker: RedisBroker, unique_name: str, redis_url: str
) -> None:
    provider = TracerProvider()
    broker.add_middleware(
        OpenTelemetryMiddleware(tracer_provider=provider), before=type(broker.middleware[0])
    )

    @dramatiq.actor(broker=broker, queue_name=unique_name, max_retries=0)
    def explode() -> None:
        raise RuntimeError("boom")

    with provider.get_tracer("test").start_as_current_span("POST /orders") as request:
        message = explode.send()
    trace_id = format(request.get_span_context().trace_id, "032x")
    url = f"{redis_url}?namespace={unique_name}"
    inspector = RedisInspector(url)
    try:
        with running_worker(broker):
            wait_until(lambda: dead_count(inspector, unique_name), lambda dead: dead == 1)
    finally:
        inspector.close()

    result = narrow(
        "dlq",
        "show",
        unique_name,
        message.message_id[:13] + "…",
        "--broker",
        url,
        "--dashboard-url",
        "http://mon:9191/",
    )

    assert result.exit_code == 0, result.output
    assert f"trace id:    {trace_id}" in result.output
    assert f"dashboard:   http://mon:9191/runs/{trace_id}" in result.output


def test_an_ambiguous_or_unknown_short_id_is_one_line_and_exit_1(queue: PopulatedQueue) -> None:
    result = narrow("dlq", "show", queue.queue, "ffffff00-no", "--broker", queue.url)

    assert result.exit_code == 1
    assert "no dead letter 'ffffff00-no'" in result.output


def test_an_emptied_queue_stays_listed(broker: RedisBroker, unique_name: str, redis_url: str) -> None:
    url = f"{redis_url}?namespace={unique_name}"

    @dramatiq.actor(broker=broker, queue_name=unique_name)
    def work(number: int) -> None:
        return None

    for number in range(2):
        work.send(number)
    first = json.loads(narrow("queues", "--broker", url, "--json").output)
    assert [(q["name"], q["ready"]) for q in first["queues"]] == [(unique_name, 2)]
    with running_worker(broker):
        wait_until(lambda: broker.client.exists(f"{unique_name}:{unique_name}"), lambda exists: not exists)

    # Redis kept no key of the emptied queue; a new reader still lists it, at zero.
    again = json.loads(narrow("queues", "--broker", url, "--json").output)
    assert [(q["name"], q["ready"], q["in_flight"]) for q in again["queues"]] == [(unique_name, 0, 0)]
    health = narrow("health", "--broker", url)
    assert "1 queue," in health.output


def test_queue_narrows_and_an_unknown_queue_is_an_error(queue: PopulatedQueue, broker: RedisBroker) -> None:
    result = narrow("queues", "--broker", queue.url, "--queue", queue.queue, "--json")
    assert result.exit_code == 0, result.output
    assert [q["name"] for q in json.loads(result.output)["queues"]] == [queue.queue]

    for command in (("queues",), ("health",)):
        unknown = narrow(*command, "--broker", queue.url, "--queue", "nosuchqueue")
        assert unknown.exit_code == 1, unknown.output
        [line] = unknown.output.strip().splitlines()
        assert "no queue 'nosuchqueue'" in line and queue.queue in line


def test_health_is_degraded_by_dead_letters_and_their_growth(queue: PopulatedQueue) -> None:
    piled = narrow("health", "--broker", queue.url, "--max-dead", "4")
    assert piled.exit_code == 1
    assert f"queue '{queue.queue}' has 5 dead letters (max 4)" in piled.output

    growing = narrow("health", "--broker", queue.url, "--max-new-dead", "0", "--dead-window", "600")
    assert growing.exit_code == 1
    assert f"queue '{queue.queue}' gained 5 dead letters in the last 600 s (max 0)" in growing.output

    fine = narrow("health", "--broker", queue.url, "--max-dead", "5", "--max-new-dead", "5")
    assert fine.exit_code == 0, fine.output
    assert "1 queue, 5 pending" in fine.output
