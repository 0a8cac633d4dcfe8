"""Repeated ``--broker``/``--app``: several brokers read as one; bad values are one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import click
import pytest

from tasklens.cli.options import broker_specs
from tasklens.monitor.settings import BrokerSpec
from tests.cli.conftest import Invoke
from tests.several_brokers import Layout


def test_each_broker_with_its_library_given_or_detected() -> None:
    specs = broker_specs(("dramatiq=redis://a:6379/0", "redis://b:6379/0"), ())
    assert specs == (
        BrokerSpec("redis://a:6379/0", None, "dramatiq"),
        BrokerSpec("redis://b:6379/0", None, None),
    )


def test_one_broker_is_read_as_ever() -> None:
    assert broker_specs(("redis://a:6379/0",), ("myapp",)) == ()
    assert broker_specs((), ()) == ()


@pytest.mark.parametrize(
    ("brokers", "message"),
    [
        (("kafka=redis://a:6379/0", "redis://b:6379/0"), "'kafka' is not a task library"),
        (("celery=", "redis://b:6379/0"), "names no URL"),
        (("redis://a:6379/0", "redis://a:6379/0"), "given twice"),
    ],
)
def test_bad_values_are_refused(brokers: tuple[str, ...], message: str) -> None:
    with pytest.raises(click.BadParameter, match=message):
        broker_specs(brokers, ())


def test_bad_values_are_one_line_errors(invoke: Invoke) -> None:
    result = invoke("queues", "--broker", "kafka=redis://:pw@127.0.0.1:6379/0", "--broker", "redis://x:1/0")
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "'kafka' is not a task library" in line and "pw" not in line

    result = invoke(
        "queues", "--broker", "redis://:pw@127.0.0.1:6379/0", "--broker", "redis://:pw@127.0.0.1:6379/0"
    )
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "redis://:***@127.0.0.1:6379/0 is given twice" in line and "pw@" not in line


def test_queues_reads_every_broker_and_reports_the_one_down(
    invoke: Invoke, redis_url: str, namespace: str
) -> None:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url, namespace=namespace)
    dramatiq.actor(lambda: None, actor_name="noop", queue_name="multi", broker=broker).send()
    broker.close()
    result = invoke(
        "queues",
        "--broker",
        f"dramatiq={redis_url}?namespace={namespace}",
        "--broker",
        "celery=redis://127.0.0.1:1/0",
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [(q["name"], q["messaging_system"], q["ready"]) for q in body["queues"]] == [
        ("multi", "dramatiq", 1)
    ]
    assert [b["up"] for b in body["brokers"]] == [True, False]


@pytest.fixture
def layout(redis_url: str, namespace: str) -> Iterator[Layout]:
    laid_out = Layout(redis_url, namespace)
    yield laid_out
    laid_out.close()


def _both(layout: Layout) -> list[str]:
    return [
        "--broker",
        f"dramatiq={layout.dramatiq_url}",
        "--broker",
        f"celery={layout.redis_url}",
        "--transport-option",
        f"global_keyprefix={layout.prefix}",
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["dlq", "list", "shared"],
        ["dlq", "show", "shared", "0123456789"],
        ["dlq", "requeue", "shared", "--all", "--yes"],
        ["dlq", "delete", "shared", "0123456789"],
        ["dlq", "purge", "shared", "--yes"],
        ["queues", "--queue", "shared"],
    ],
)
def test_a_queue_both_libraries_have_needs_library(
    invoke: Invoke, layout: Layout, command: list[str]
) -> None:
    result = invoke(*command, *_both(layout))
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "'shared' exists in celery and dramatiq" in line and "--library celery|dramatiq" in line


def test_library_chooses_the_queue_of_a_name_both_libraries_use(invoke: Invoke, layout: Layout) -> None:
    listed = invoke("dlq", "list", "shared", "--json", "--library", "dramatiq", *_both(layout))
    shown = invoke("dlq", "show", "shared", layout.dead_ids[0], "--library", "dramatiq", *_both(layout))
    celery_dead = invoke("dlq", "list", "shared", "--library", "celery", *_both(layout))
    celery_queue = invoke("queues", "--queue", "shared", "--json", "--library", "celery", *_both(layout))
    purged = invoke("dlq", "purge", "shared", "--yes", "--library", "dramatiq", *_both(layout))
    after = invoke("queues", "--queue", "shared", "--json", "--library", "dramatiq", *_both(layout))

    assert listed.exit_code == 0, listed.output
    assert {item["message_id"] for item in json.loads(listed.output)["items"]} == set(layout.dead_ids)
    assert shown.exit_code == 0 and layout.dead_ids[0] in shown.output
    assert celery_dead.exit_code == 1  # Celery keeps no dead letters on Redis
    assert celery_dead.output.count("\n") == 1
    assert [(q["messaging_system"], q["ready"]) for q in json.loads(celery_queue.output)["queues"]] == [
        ("celery", 5)
    ]
    assert purged.exit_code == 0 and "purged 2 dead letters" in purged.output
    assert [(q["messaging_system"], q["dead"]) for q in json.loads(after.output)["queues"]] == [
        ("dramatiq", 0)
    ]


def test_a_queue_two_brokers_of_one_library_have_names_them(
    invoke: Invoke, layout: Layout, redis_url: str
) -> None:
    second = f"{redis_url}?namespace={layout.namespace}-two"
    import redis

    client = redis.Redis.from_url(redis_url)
    client.zadd(f"{layout.namespace}-two:shared.XQ", {"m1": 1.0})
    client.hset(f"{layout.namespace}-two:shared.XQ.msgs", "m1", "{}")
    try:
        result = invoke(
            "dlq",
            "list",
            "shared",
            "--broker",
            layout.dramatiq_url,
            "--broker",
            second,
            "--library",
            "dramatiq",
        )
    finally:
        client.delete(f"{layout.namespace}-two:shared.XQ", f"{layout.namespace}-two:shared.XQ.msgs")
        client.close()
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert f"exists on {layout.dramatiq_url} and {second}" in line and "only the --broker" in line


def test_health_counts_new_dead_letters_of_a_name_both_libraries_use(invoke: Invoke, layout: Layout) -> None:
    result = invoke("health", "--max-new-dead", "0", "--dead-window", "600", *_both(layout))
    assert result.exit_code == 1, result.output
    assert "queue 'shared' gained 2 dead letters in the last 600 s (max 0)" in result.output


def test_the_table_says_whose_queue_each_row_is_and_each_brokers_workers(
    invoke: Invoke, layout: Layout
) -> None:
    result = invoke("queues", *_both(layout))
    assert result.exit_code == 0, result.output
    rows = {
        tuple(cell.strip() for cell in line.strip("│").split("│")[:3])
        for line in result.output.splitlines()
        if line.startswith("│")
    }
    assert {("shared", "celery", "5"), ("shared", "dramatiq", "3"), ("emails", "dramatiq", "1")} <= rows
    assert ("billing", "celery", "2") in rows
    footer = [line for line in result.output.splitlines() if " on redis://" in line]
    assert [line.split(" on ")[0] for line in footer] == ["dramatiq", "celery"]
    assert all("live workers: " in line for line in footer)
