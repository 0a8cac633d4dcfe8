"""Repeated ``--broker``/``--app``: several brokers read as one; bad values are one-line errors."""

from __future__ import annotations

import json

import click
import pytest

from tasklens.cli.options import broker_specs
from tasklens.monitor.settings import BrokerSpec
from tests.cli.conftest import Invoke


def test_each_broker_with_its_library_given_or_detected() -> None:
    specs = broker_specs(("dramatiq=redis://a:6379/0", "redis://b:6379/0"), (), None)
    assert specs == (
        BrokerSpec("redis://a:6379/0", None, "dramatiq"),
        BrokerSpec("redis://b:6379/0", None, None),
    )
    assert broker_specs(("redis://a:6379/0", "redis://b:6379/0"), (), "celery")[1].library == "celery"


def test_one_broker_is_read_as_ever() -> None:
    assert broker_specs(("redis://a:6379/0",), ("myapp",), None) == ()
    assert broker_specs((), (), None) == ()


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
        broker_specs(brokers, (), None)


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
