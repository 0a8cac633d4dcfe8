"""StubInspector: Dramatiq's in-process broker read and acted on like the others."""

from __future__ import annotations

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from tasklens.brokers import MessageNotFound, QueueNotFound
from tasklens.brokers.stub import StubInspector


@pytest.fixture
def broker() -> StubBroker:
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


def test_counts_ready_delayed_in_flight_and_dead(broker: StubBroker) -> None:
    @dramatiq.actor(broker=broker, queue_name="q", max_retries=0)
    def job(kind: str) -> None:
        if kind == "die":
            raise RuntimeError("dead")

    job.send("die")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    broker.join("q", fail_fast=False)
    worker.join()
    worker.stop()

    for _ in range(4):
        job.send("ready")
    job.send_with_options(args=("later",), delay=60_000)
    consumer = broker.consume("q")
    taken = next(consumer)  # delivered, not acknowledged: in flight
    assert taken is not None
    stats = StubInspector(broker).snapshot().queue("q")
    assert (stats.ready, stats.delayed, stats.in_flight, stats.dead) == (3, 1, 1, 1)
    assert stats.oldest_age is None  # the stub cannot show its head without taking it
    consumer.ack(taken)
    assert StubInspector(broker).snapshot().queue("q").in_flight == 0


def test_dead_letter_actions(broker: StubBroker) -> None:
    done: list[int] = []

    @dramatiq.actor(broker=broker, queue_name="q", max_retries=0)
    def job(n: int) -> None:
        if not done or n < 0:
            raise RuntimeError("first run fails")

    for n in range(4):
        job.send(n)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        broker.join("q", fail_fast=False)
        inspector = StubInspector(broker)
        page = inspector.dead_letters("q")
        assert page.total == 4 and {letter.actor for letter in page.items} == {"job"}
        first = page.items[0].message_id
        assert inspector.dead_letter("q", first).message_id == first
        with pytest.raises(MessageNotFound):
            inspector.delete_dead("q", ["nope", first])
        assert inspector.dead_letters("q").total == 4  # nothing changed
        assert inspector.delete_dead("q", [first]) == 1
        done.append(1)
        assert inspector.requeue_dead("q", [page.items[1].message_id]) == 1
        broker.join("q", fail_fast=False)
        worker.join()
        assert inspector.dead_letters("q").total == 2
        assert inspector.purge_dead("q") == 2
        assert inspector.snapshot().queue("q").dead == 0
        with pytest.raises(QueueNotFound):
            inspector.dead_letters("missing")
    finally:
        worker.stop()
