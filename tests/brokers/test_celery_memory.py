"""Celery on kombu's in-memory transport, read from the same process: ready counts as the queues
hold them, everything the transport cannot tell unknown with a note."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery
from kombu.transport.memory import Channel

from tasklens.brokers.base import NoDeadLetterQueue
from tasklens.brokers.celery_memory import MEMORY_WORKERS_NOTE, CeleryMemoryInspector


def test_ready_counts_are_the_in_memory_queues_sizes_and_the_rest_is_unknown() -> None:
    name = f"t{uuid.uuid4().hex[:10]}"
    sent, expected = f"{name}.sent", f"{name}.expected"
    app = Celery(f"{name}-app", broker="memory://")
    for _ in range(3):
        app.send_task("orders.ship", queue=sent)
    Channel.queues.setdefault(f"celery@{name}.celery.pidbox", Channel.queues.get(sent))
    try:
        snapshot = CeleryMemoryInspector((expected,)).snapshot()
        rows = {q.name: q for q in snapshot.queues}
        assert rows[sent].ready == Channel.queues[sent].qsize() == 3
        assert rows[expected].ready == 0  # the app's queue, before anything was sent to it
        assert not any("pidbox" in q for q in rows)
        assert (rows[sent].delayed, rows[sent].in_flight, rows[sent].dead) == (None, None, None)
        assert {q.messaging_system for q in snapshot.queues} == {"celery"}
        assert (snapshot.workers, snapshot.worker_list) == (None, None)
        assert snapshot.workers_note == MEMORY_WORKERS_NOTE
        with pytest.raises(NoDeadLetterQueue, match="in-memory transport keeps none"):
            CeleryMemoryInspector().dead_letters(sent)
    finally:
        for queue in (sent, f"celery@{name}.celery.pidbox"):
            Channel.queues.pop(queue, None)
        app.close()
