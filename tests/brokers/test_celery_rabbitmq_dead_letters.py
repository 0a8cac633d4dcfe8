"""Celery on RabbitMQ with a dead-letter exchange: real Celery tasks, dead-lettered by RabbitMQ
itself (rejected without requeue), browsed, requeued (and run by a real worker), deleted and
purged, through the API the monitor and ``tasklens dlq`` use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
import redis
from click.testing import CliRunner
from pika.adapters.blocking_connection import BlockingChannel

from tasklens.brokers import open_broker
from tasklens.brokers.base import BrokerUnavailable, MessageNotFound, NoDeadLetterQueue
from tasklens.brokers.celery_rabbitmq import CeleryRabbitmqInspector
from tasklens.cli import main
from tests.celery_fixtures import CeleryApp, celery_worker, wait_for, write_app

pytestmark = pytest.mark.rabbitmq

QUEUES = """
from kombu import Exchange, Queue
NAME = app.main
app.conf.task_queues = (
    Queue(NAME, Exchange(NAME), routing_key=NAME, queue_arguments={
        "x-dead-letter-exchange": NAME + ".dlx", "x-dead-letter-routing-key": NAME + ".dead"}),
    Queue(NAME + ".dead", Exchange(NAME + ".dlx"), routing_key=NAME + ".dead"),
    Queue(NAME + ".plain", Exchange(NAME + ".plain"), routing_key=NAME + ".plain"),
)
"""


@dataclass(frozen=True)
class DeadTasks:
    app: CeleryApp
    task_ids: list[str]
    keys: list[str]

    @property
    def queue(self) -> str:
        return self.app.queue

    @property
    def dead(self) -> str:
        return f"{self.app.queue}.dead"


def contents(rabbitmq_url: str, queue: str) -> list[tuple[dict[str, Any], Any]]:
    """The (headers, decoded body) of every message of ``queue``, given back after reading."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append((dict(properties.headers or {}), json.loads(body)))
        channel.basic_nack(delivery_tag=0, multiple=True, requeue=True)
        return found
    finally:
        connection.close()


def reject_all(rabbitmq_url: str, queue: str, count: int) -> None:
    """Reject ``count`` messages without requeue: RabbitMQ dead-letters them."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = connection.channel()
        for _ in range(count):
            method = wait_for(lambda: channel.basic_get(queue, auto_ack=False)[0], f"a task in {queue}")
            channel.basic_reject(method.delivery_tag, requeue=False)
    finally:
        connection.close()


@pytest.fixture
def dead_tasks(rabbitmq_url: str, redis_url: str, unique_name: str, tmp_path: Path) -> Iterator[DeadTasks]:
    files = write_app(tmp_path, unique_name, rabbitmq_url, redis_url, extra=QUEUES)
    app = files.load()
    client = redis.Redis.from_url(redis_url)
    keys = [f"{unique_name}.key{number}" for number in range(3)]
    try:
        with app.connection_for_write() as connection:
            for queue in app.conf.task_queues:
                queue.bind(connection.default_channel).declare()
        # Released already: each "hold" returns at once once a worker runs it.
        for key in keys:
            client.set(key, 1)
        task_ids = [app.send_task("hold", (key,), queue=unique_name).id for key in keys]
        reject_all(rabbitmq_url, unique_name, 3)
        wait_for(lambda: len(contents(rabbitmq_url, f"{unique_name}.dead")) == 3, "3 dead tasks")
        yield DeadTasks(app=files, task_ids=task_ids, keys=keys)
    finally:
        client.delete(*keys, *(f"{key}.started" for key in keys))
        client.close()
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in app.conf.task_queues:
                channel.queue_delete(queue.name)
            for exchange in (unique_name, f"{unique_name}.dlx", f"{unique_name}.plain"):
                channel.exchange_delete(exchange)
        app.close()


@pytest.fixture
def inspector(dead_tasks: DeadTasks, rabbitmq_url: str) -> Iterator[CeleryRabbitmqInspector]:
    with open_broker(rabbitmq_url, app=dead_tasks.app.module) as opened:
        assert isinstance(opened, CeleryRabbitmqInspector)
        yield opened


def test_dead_tasks_are_browsed_with_their_task_args_and_death_and_none_is_lost(
    dead_tasks: DeadTasks, inspector: CeleryRabbitmqInspector, rabbitmq_url: str
) -> None:
    page = inspector.dead_letters(dead_tasks.queue)
    assert page.total == 3
    assert [letter.message_id for letter in page.items] == dead_tasks.task_ids
    assert [letter.args for letter in page.items] == [[key] for key in dead_tasks.keys]
    assert {letter.actor for letter in page.items} == {"hold"}
    assert all(letter.died_at is not None for letter in page.items)
    one = inspector.dead_letter(dead_tasks.queue, dead_tasks.task_ids[1])
    assert one.args == [dead_tasks.keys[1]]
    assert len(contents(rabbitmq_url, dead_tasks.dead)) == 3
    assert inspector.snapshot().queue(dead_tasks.queue).dead == 3


def test_a_requeued_task_goes_back_as_it_was_sent_and_a_worker_runs_it(
    dead_tasks: DeadTasks, inspector: CeleryRabbitmqInspector, rabbitmq_url: str, redis_url: str
) -> None:
    first, second, third = dead_tasks.task_ids
    assert inspector.requeue_dead(dead_tasks.queue, [second]) == 1
    assert [headers["id"] for headers, _ in contents(rabbitmq_url, dead_tasks.dead)] == [first, third]
    ((headers, body),) = contents(rabbitmq_url, dead_tasks.queue)
    assert (headers["id"], headers["task"], body[0]) == (second, "hold", [dead_tasks.keys[1]])
    assert "x-death" not in headers
    client = redis.Redis.from_url(redis_url)
    try:
        with celery_worker(dead_tasks.app, f"dlq@{dead_tasks.queue}", "-Q", dead_tasks.queue) as worker:
            wait_for(
                lambda: client.exists(f"{dead_tasks.keys[1]}.started"),
                f"the requeued task to run ({worker.poll()})",
            )
        assert not client.exists(f"{dead_tasks.keys[0]}.started")
    finally:
        client.close()


def test_an_unknown_id_changes_nothing_then_delete_and_purge(
    dead_tasks: DeadTasks, inspector: CeleryRabbitmqInspector, rabbitmq_url: str
) -> None:
    first, second, third = dead_tasks.task_ids
    with pytest.raises(MessageNotFound, match="nothing was changed"):
        inspector.requeue_dead(dead_tasks.queue, [first, "no-such-task"])
    with pytest.raises(MessageNotFound):
        inspector.delete_dead(dead_tasks.queue, ["no-such-task"])
    assert len(contents(rabbitmq_url, dead_tasks.dead)) == 3
    assert contents(rabbitmq_url, dead_tasks.queue) == []
    assert inspector.delete_dead(dead_tasks.queue, [second]) == 1
    assert [headers["id"] for headers, _ in contents(rabbitmq_url, dead_tasks.dead)] == [first, third]
    assert inspector.purge_dead(dead_tasks.queue) == 2
    assert contents(rabbitmq_url, dead_tasks.dead) == []


def test_a_crash_in_the_middle_of_a_requeue_loses_nothing(
    dead_tasks: DeadTasks, inspector: CeleryRabbitmqInspector, rabbitmq_url: str, monkeypatch: Any
) -> None:
    acknowledge = BlockingChannel.basic_ack
    acks = []

    def dies_on_the_second(self: BlockingChannel, *args: Any, **kwargs: Any) -> None:
        acks.append(1)
        if len(acks) == 2:
            raise OSError("connection lost")  # after the second publish, before its ack
        acknowledge(self, *args, **kwargs)

    monkeypatch.setattr(BlockingChannel, "basic_ack", dies_on_the_second)
    with pytest.raises(BrokerUnavailable):
        inspector.requeue_dead(dead_tasks.queue)
    monkeypatch.setattr(BlockingChannel, "basic_ack", acknowledge)
    requeued = [headers["id"] for headers, _ in contents(rabbitmq_url, dead_tasks.queue)]
    dead = [headers["id"] for headers, _ in contents(rabbitmq_url, dead_tasks.dead)]
    # The second may be in both (at-least-once); every task is somewhere.
    assert requeued == dead_tasks.task_ids[:2]
    assert sorted(dead) == sorted(dead_tasks.task_ids[1:])


def test_a_queue_without_a_dead_letter_exchange_says_so(
    dead_tasks: DeadTasks, inspector: CeleryRabbitmqInspector
) -> None:
    with pytest.raises(NoDeadLetterQueue, match="no dead-letter exchange"):
        inspector.dead_letters(f"{dead_tasks.queue}.plain")


def test_tasklens_dlq_lists_and_requeues_celery_tasks(dead_tasks: DeadTasks, rabbitmq_url: str) -> None:
    runner = CliRunner()
    target = ["--broker", rabbitmq_url, "--app", dead_tasks.app.module]
    listed = runner.invoke(main, ["dlq", "list", *target, dead_tasks.queue, "--json"])
    assert listed.exit_code == 0, listed.output
    assert [item["message_id"] for item in json.loads(listed.output)["items"]] == dead_tasks.task_ids
    requeued = runner.invoke(main, ["dlq", "requeue", *target, dead_tasks.queue, dead_tasks.task_ids[0]])
    assert requeued.exit_code == 0, requeued.output
    assert [headers["id"] for headers, _ in contents(rabbitmq_url, dead_tasks.queue)] == dead_tasks.task_ids[
        :1
    ]
    plain = runner.invoke(main, ["dlq", "list", *target, f"{dead_tasks.queue}.plain"])
    assert plain.exit_code != 0
    assert "no dead-letter exchange" in plain.output
