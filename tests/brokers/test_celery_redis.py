"""Celery on Redis: every count tasklens reads equals what kombu's keys hold."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasklens.brokers import open_broker
from tasklens.brokers.base import NoDeadLetterQueue
from tasklens.brokers.celery_redis import CeleryRedisInspector, KombuRedisOptions
from tests.celery_fixtures import CeleryRedisTruth, celery_redis_truth, delete_prefixed, write_app


@pytest.fixture
def truth(redis_url: str, unique_name: str, tmp_path: Path) -> Iterator[CeleryRedisTruth]:
    with celery_redis_truth(redis_url, unique_name, tmp_path) as laid_out:
        yield laid_out


def test_counts_equal_what_redis_holds(truth: CeleryRedisTruth) -> None:
    inspector = open_broker(
        truth.app.url, library="celery", transport_options={"global_keyprefix": truth.app.prefix}
    )
    with inspector:
        snapshot = inspector.snapshot()
    held = truth.read()

    assert snapshot.messaging_system == "celery"
    for queue, expected in held.items():
        stats = snapshot.queue(queue)
        assert stats.priorities == expected["priorities"]
        assert (stats.ready, stats.delayed, stats.in_flight) == (
            expected["ready"],
            expected["delayed"],
            expected["in_flight"],
        )
        assert stats.dead is None  # Celery keeps no dead letters on Redis: unknown, not 0
        assert stats.visibility_timeout == 3600
    prio = snapshot.queue(truth.prio_queue)
    assert prio.priorities == {0: 2, 3: 1, 6: 0, 9: 3}
    assert prio.oldest_age is not None and prio.oldest_age >= 60  # from tasklens_published_at
    assert prio.oldest_unacked_age is None
    held_queue = snapshot.queue(truth.app.queue)
    # Its ready tasks were sent without the header: their age is unknown.
    assert held_queue.oldest_age is None
    assert held_queue.oldest_unacked_age is not None and 0 <= held_queue.oldest_unacked_age < 3600


def test_the_library_and_queues_come_from_the_app(truth: CeleryRedisTruth) -> None:
    truth.app.load()
    with open_broker(truth.app.url, app=f"{truth.app.module}:app") as inspector:
        assert isinstance(inspector, CeleryRedisInspector)
        assert inspector.options.global_keyprefix == truth.app.prefix
        snapshot = inspector.snapshot()
    assert snapshot.queue(truth.app.queue).ready == truth.read()[truth.app.queue]["ready"]


def test_a_url_alone_is_detected_as_celery(truth: CeleryRedisTruth) -> None:
    with open_broker(truth.app.url, transport_options={"global_keyprefix": truth.app.prefix}) as inspector:
        snapshot = inspector.snapshot()
    assert snapshot.messaging_system == "celery"
    assert {truth.app.queue, truth.prio_queue} <= {q.name for q in snapshot.queues}


def test_dead_letter_calls_say_there_is_no_dead_letter_queue(truth: CeleryRedisTruth) -> None:
    with (
        open_broker(truth.app.url, library="celery") as inspector,
        pytest.raises(NoDeadLetterQueue, match="keeps none"),
    ):
        inspector.dead_letters(truth.app.queue)


def test_custom_priority_steps_and_separator(redis_url: str, unique_name: str, tmp_path: Path) -> None:
    options = {
        "global_keyprefix": f"{unique_name}:",
        "priority_steps": [0, 5],
        "sep": "::",
        "visibility_timeout": 60,
    }
    files = write_app(
        tmp_path, unique_name, redis_url, redis_url, extra=f"app.conf.broker_transport_options = {options!r}"
    )
    app = files.load()
    try:
        for priority in (0, 1, 7, 9):
            app.send_task("quick", (priority,), priority=priority)
        client = redis.Redis.from_url(redis_url)
        assert client.llen(f"{unique_name}:{unique_name}::5") == 2  # kombu's own layout
        client.close()
        inspector = CeleryRedisInspector(
            redis_url, queues=[unique_name], options=KombuRedisOptions.from_transport_options(options)
        )
        with inspector:
            stats = inspector.snapshot().queue(unique_name)
        assert stats.priorities == {0: 2, 5: 2}
        assert stats.ready == 4
        assert stats.visibility_timeout == 60
    finally:
        app.close()
        delete_prefixed(redis_url, f"{unique_name}:")


def test_invalid_transport_options_are_refused() -> None:
    with pytest.raises(ValueError, match="priority_steps"):
        KombuRedisOptions.from_transport_options({"priority_steps": ["high"]})


def test_an_unreachable_broker_names_the_redacted_url() -> None:
    from tasklens.brokers.base import BrokerUnavailable
    from tests.brokers.workers import closed_port

    inspector = CeleryRedisInspector(f"redis://:hunter2@127.0.0.1:{closed_port()}/0", timeout=1)
    with pytest.raises(BrokerUnavailable) as caught:
        inspector.snapshot()
    assert "hunter2" not in str(caught.value)
    assert ":***@127.0.0.1" in str(caught.value)


def test_unacknowledged_tasks_are_counted_on_their_queue_whatever_their_routing_key(
    redis_url: str, unique_name: str, tmp_path: Path
) -> None:
    from tests.celery_fixtures import celery_worker, unacked_split, wait_for

    queue, routing_key = f"{unique_name}.jobs", f"route.{unique_name}"
    exchange = f"{unique_name}.ex"
    extra = (
        "from kombu import Exchange, Queue\n"
        f"app.conf.task_queues = (Queue({queue!r}, Exchange({exchange!r}), routing_key={routing_key!r}),)\n"
    )
    files = write_app(tmp_path, unique_name, redis_url, redis_url, extra=extra)
    app = files.load()
    client = redis.Redis.from_url(redis_url)
    try:
        with celery_worker(files, f"a@{unique_name}", "-Q", queue):
            for number in range(3):
                app.send_task("quick", (number,), queue=queue, countdown=3600)
            held = wait_for(
                lambda: unacked_split(client, files.prefix).get(queue) == {"eta": 3, "reserved": 0},
                "the worker holding 3 countdown tasks",
            )
            assert held
            with open_broker(
                redis_url, library="celery", transport_options={"global_keyprefix": files.prefix}
            ) as inspector:
                snapshot = inspector.snapshot()
        stats = snapshot.queue(queue)
        assert (stats.ready, stats.delayed, stats.in_flight) == (0, 3, 0)
        assert routing_key not in {q.name for q in snapshot.queues}
    finally:
        client.close()
        app.close()
        delete_prefixed(redis_url, files.prefix)
