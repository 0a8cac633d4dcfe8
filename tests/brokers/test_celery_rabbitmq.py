"""Celery on RabbitMQ (with its real management API): ready and consumers from passive declares,
unacknowledged tasks and dead letters from the management API or the app, delayed delivery summed,
the rest unknown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
import redis

from tasklens.brokers import open_broker
from tasklens.brokers.celery_rabbitmq import DELAYED_LEVELS, NATIVE_DELAYED_QUEUE, CeleryRabbitmqInspector
from tests.celery_fixtures import CeleryApp, celery_worker, wait_for, write_app

pytestmark = pytest.mark.rabbitmq

#: How long RabbitMQ's management API may take to show fresh counts (it samples every 5 s).
STATISTICS_DEADLINE = 30.0

QUEUES = """
from kombu import Exchange, Queue
NAME = app.main
app.conf.task_queues = (
    Queue(NAME, Exchange(NAME), routing_key=NAME, queue_arguments={{
        "x-dead-letter-exchange": NAME + ".dlx", "x-dead-letter-routing-key": NAME + ".dead"}}),
    Queue(NAME + ".dead", Exchange(NAME + ".dlx"), routing_key=NAME + ".dead"),
    Queue(NAME + ".work", Exchange(NAME + ".work"), routing_key=NAME + ".work"),
)
"""


@dataclass(frozen=True)
class RabbitTruth:
    app: CeleryApp
    hostname: str

    @property
    def queue(self) -> str:
        return self.app.queue

    @property
    def work(self) -> str:
        return f"{self.app.queue}.work"

    @property
    def dead(self) -> str:
        return f"{self.app.queue}.dead"


def management_rows(management_url: str) -> dict[str, dict[str, Any]]:
    rows = httpx.get(f"{management_url}/api/queues/%2F", auth=("guest", "guest"), timeout=10).json()
    return {row["name"]: row for row in rows}


def passive_count(rabbitmq_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


@pytest.fixture
def truth(
    rabbitmq_url: str, redis_url: str, rabbitmq_management_url: str, unique_name: str, tmp_path: Path
) -> Iterator[RabbitTruth]:
    files = write_app(tmp_path, unique_name, rabbitmq_url, redis_url, extra=QUEUES.format())
    app = files.load()
    release = f"{unique_name}.release"
    client = redis.Redis.from_url(redis_url)
    queues = app.conf.task_queues
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in queues:
                queue.bind(channel).declare()
            producer = connection.Producer()
            # Expired at once: RabbitMQ dead-letters them through the queue's exchange.
            for number in range(3):
                producer.publish(
                    {"n": number}, exchange=queues[0].exchange, routing_key=unique_name, expiration=0.001
                )
        wait_for(lambda: passive_count(rabbitmq_url, f"{unique_name}.dead") == 3, "3 dead letters")
        for number in range(2):
            app.send_task("quick", (number,), queue=unique_name)
        hostname = f"a@{unique_name}"
        with celery_worker(files, hostname, "-Q", f"{unique_name}.work") as worker:
            for number in range(2):
                app.send_task("quick", (number,), queue=f"{unique_name}.work", countdown=3600)
            app.send_task("hold", (release,), queue=f"{unique_name}.work")
            for number in range(4):
                app.send_task("quick", (number,), queue=f"{unique_name}.work")
            wait_for(
                lambda: client.exists(f"{release}.started"), f"the blocking task started ({worker.poll()})"
            )
            # 2 countdown tasks and 2 prefetched ones, unacknowledged; 2 ready.
            wait_for(
                lambda: (
                    (row := management_rows(rabbitmq_management_url).get(f"{unique_name}.work"))
                    and (row.get("messages_unacknowledged"), row.get("messages_ready"), row.get("consumers"))
                    == (4, 2, 1)
                ),
                # Its statistics lag the broker by up to their collection interval.
                "the management API showing the worker's 4 unacknowledged tasks and its consumer",
                timeout=STATISTICS_DEADLINE,
            )
            try:
                yield RabbitTruth(app=files, hostname=hostname)
            finally:
                client.set(release, 1)
    finally:
        client.delete(release, f"{release}.started")
        client.close()
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in queues:
                channel.queue_delete(queue.name)
            for exchange in (unique_name, f"{unique_name}.dlx", f"{unique_name}.work"):
                channel.exchange_delete(exchange)
        app.close()


def test_with_the_management_api_every_count_is_the_brokers(
    truth: RabbitTruth, rabbitmq_url: str, rabbitmq_management_url: str
) -> None:
    with open_broker(rabbitmq_url, library="celery", management_url=rabbitmq_management_url) as inspector:
        snapshot = inspector.snapshot()
    rows = management_rows(rabbitmq_management_url)

    assert snapshot.messaging_system == "celery"
    work = snapshot.queue(truth.work)
    assert (work.ready, work.in_flight, work.consumers) == (2, 4, 1)
    assert work.in_flight == rows[truth.work]["messages_unacknowledged"]
    assert work.delayed is None  # held countdown tasks cannot be told from reserved ones here
    assert work.dead is None  # no dead-letter exchange
    source = snapshot.queue(truth.queue)
    assert (source.ready, source.dead) == (2, 3)  # dead: the queue bound to its dead-letter exchange
    assert source.dead == rows[truth.dead]["messages"]
    assert truth.dead not in {q.name for q in snapshot.queues}  # shown as the dead of its source
    assert source.oldest_age is None  # cannot be read without consuming
    assert not any(
        q.name.startswith(("celeryev.", "tasklens.celeryev.")) or ".pidbox" in q.name for q in snapshot.queues
    )


def test_over_amqp_alone_unacknowledged_is_unknown_and_dead_letters_come_from_the_app(
    truth: RabbitTruth, rabbitmq_url: str
) -> None:
    with open_broker(rabbitmq_url, app=f"{truth.app.module}:app") as inspector:
        assert isinstance(inspector, CeleryRabbitmqInspector)
        snapshot = inspector.snapshot()

    work = snapshot.queue(truth.work)
    assert (work.ready, work.consumers) == (passive_count(rabbitmq_url, truth.work), 1)
    assert work.in_flight is None and work.delayed is None
    assert snapshot.queue(truth.queue).dead == passive_count(rabbitmq_url, truth.dead) == 3


def test_a_url_and_queue_alone_are_detected_as_celery(truth: RabbitTruth, rabbitmq_url: str) -> None:
    with open_broker(rabbitmq_url, queues=[truth.work]) as inspector:
        snapshot = inspector.snapshot()
    assert snapshot.messaging_system == "celery"
    assert snapshot.queue(truth.work).ready == 2
    assert truth.hostname in [w.hostname for w in snapshot.worker_list or []]


def test_native_delayed_delivery_is_summed_as_delayed(
    rabbitmq_url: str, rabbitmq_management_url: str, unique_name: str
) -> None:
    from kombu import Connection, Exchange
    from kombu.transport.native_delayed_delivery import declare_native_delayed_delivery_exchanges_and_queues

    with Connection(rabbitmq_url) as connection:
        # What a Celery worker with quorum queues declares at start (idempotent).
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
        routing_key = ".".join(["1"] + ["0"] * (DELAYED_LEVELS - 1) + [unique_name])
        connection.Producer().publish(
            {"marker": unique_name},
            exchange=Exchange(f"{NATIVE_DELAYED_QUEUE}_27", type="topic"),
            routing_key=routing_key,
        )
        try:
            truth = wait_for(
                lambda: (
                    (
                        total := sum(
                            passive_count(rabbitmq_url, f"{NATIVE_DELAYED_QUEUE}_{level}")
                            for level in range(DELAYED_LEVELS)
                        )
                    )
                    and total
                ),
                "the delayed task in celery_delayed_27",
            )
            with open_broker(rabbitmq_url, library="celery", queues=["celery"]) as inspector:
                row = inspector.snapshot().queue(NATIVE_DELAYED_QUEUE)
            assert row.delayed == truth
            assert row.ready is None and row.in_flight is None
        finally:
            _take_back(rabbitmq_url, unique_name)


def _take_back(rabbitmq_url: str, marker: str) -> None:
    """Remove the test's own delayed message (others' stay)."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        method, _, body = channel.basic_get(f"{NATIVE_DELAYED_QUEUE}_27", auto_ack=False)
        if method is None:
            break
        if marker.encode() in body:
            channel.basic_ack(method.delivery_tag)
            break
        channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()


def test_a_dead_letter_exchange_set_by_policy_is_found(
    rabbitmq_url: str, rabbitmq_management_url: str, unique_name: str
) -> None:
    source, dead, exchange = f"{unique_name}.pol", f"{unique_name}.pdead", f"{unique_name}.pdlx"
    policy = f"{rabbitmq_management_url}/api/policies/%2F/{unique_name}"
    auth = ("guest", "guest")
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    try:
        channel.exchange_declare(exchange, exchange_type="direct")
        channel.queue_declare(dead)
        channel.queue_bind(dead, exchange, routing_key=source)
        channel.queue_declare(source)
        response = httpx.put(
            policy,
            json={
                "pattern": f"^{source}$",
                "definition": {"dead-letter-exchange": exchange},
                "apply-to": "queues",
            },
            auth=auth,
            timeout=10,
        )
        assert response.status_code in (201, 204), response.text
        wait_for(
            lambda: (
                management_rows(rabbitmq_management_url).get(source, {}).get("effective_policy_definition")
            ),
            "the policy applied",
            timeout=STATISTICS_DEADLINE,
        )
        for number in range(2):
            channel.basic_publish("", source, str(number).encode(), pika.BasicProperties(expiration="1"))
        wait_for(lambda: passive_count(rabbitmq_url, dead) == 2, "2 messages dead-lettered by the policy")
        wait_for(
            lambda: management_rows(rabbitmq_management_url).get(dead, {}).get("messages") == 2,
            "the management API counting them",
            timeout=STATISTICS_DEADLINE,
        )
        with open_broker(rabbitmq_url, library="celery", management_url=rabbitmq_management_url) as inspector:
            stats = inspector.snapshot().queue(source)
        assert (stats.ready, stats.dead) == (0, 2)
    finally:
        httpx.delete(policy, auth=auth, timeout=10)
        for queue in (source, dead):
            channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        connection.close()


def test_metrics_and_the_cli_say_the_same(
    truth: RabbitTruth, rabbitmq_url: str, rabbitmq_management_url: str
) -> None:
    import json

    from click.testing import CliRunner
    from fastapi.testclient import TestClient

    from tasklens.cli import main
    from tasklens.monitor import MonitorSettings, create_app

    settings = MonitorSettings(
        broker_url=rabbitmq_url,
        rabbitmq_management_url=rabbitmq_management_url,
        library="celery",
        cache_ttl=0.0,
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        metrics = client.get("/metrics").text
    cli = CliRunner().invoke(
        main,
        ["queues", "--broker", rabbitmq_url, "--rabbitmq-management-url", rabbitmq_management_url, "--json"],
        catch_exceptions=False,
    )
    rows = management_rows(rabbitmq_management_url)

    work = f'messaging_destination_name="{truth.work}",messaging_system="celery"'
    assert (
        f'tasklens_queue_depth{{{work},state="ready"}} {float(rows[truth.work]["messages_ready"])}' in metrics
    )
    assert f'tasklens_queue_depth{{{work},state="in_flight"}} 4.0' in metrics
    assert f'{work},state="delayed"' not in metrics and f'{work},state="dead"' not in metrics
    source = f'messaging_destination_name="{truth.queue}",messaging_system="celery"'
    assert f'tasklens_queue_depth{{{source},state="dead"}} 3.0' in metrics
    assert cli.exit_code == 0, cli.output
    by_name = {entry["name"]: entry for entry in json.loads(cli.output)["queues"]}
    assert (by_name[truth.work]["in_flight"], by_name[truth.queue]["dead"]) == (4, 3)
