"""Which library a broker URL alone belongs to, read from the real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq.brokers.redis import RedisBroker

from tasklens.brokers import AmbiguousBroker, open_broker
from tasklens.brokers.detect import detect_library
from tests.celery_fixtures import delete_prefixed, write_app


@pytest.fixture
def both(redis_url: str, unique_name: str, namespace: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A Celery queue ``{name}c`` under prefix ``{name}x:`` and a Dramatiq queue ``{name}d`` in
    namespace ``{name}``, one message each."""
    files = write_app(tmp_path, f"{unique_name}x", redis_url, redis_url)
    app = files.load()
    app.send_task("quick", (1,), queue=f"{unique_name}c")
    broker = RedisBroker(url=redis_url, namespace=namespace)
    import dramatiq

    @dramatiq.actor(broker=broker, queue_name=f"{unique_name}d", actor_name=f"{unique_name}_actor")
    def actor() -> None:
        pass

    actor.send()
    yield f"{unique_name}c", f"{unique_name}d"
    broker.close()
    app.close()
    delete_prefixed(redis_url, files.prefix)


def test_a_named_queue_decides(redis_url: str, unique_name: str, both: tuple[str, str]) -> None:
    celery_queue, dramatiq_queue = both
    options = {"namespace": unique_name, "keyprefix": f"{unique_name}x:"}
    assert detect_library(redis_url, queues=[celery_queue], **options) == "celery"
    assert detect_library(redis_url, queues=[dramatiq_queue], **options) == "dramatiq"


def test_both_layouts_without_a_queue_is_ambiguous(
    redis_url: str, unique_name: str, both: tuple[str, str]
) -> None:
    with pytest.raises(AmbiguousBroker, match="--library celery or --library dramatiq"):
        detect_library(redis_url, namespace=unique_name, keyprefix=f"{unique_name}x:")


def test_neither_reads_as_dramatiq(redis_url: str, unique_name: str) -> None:
    assert detect_library(redis_url, namespace=unique_name, keyprefix=f"{unique_name}x:") == "dramatiq"


def test_the_detected_inspector_reads_the_celery_layout(
    redis_url: str, unique_name: str, both: tuple[str, str]
) -> None:
    celery_queue, _ = both
    with open_broker(
        redis_url, queues=[celery_queue], transport_options={"global_keyprefix": f"{unique_name}x:"}
    ) as inspector:
        snapshot = inspector.snapshot()
    assert snapshot.messaging_system == "celery"
    assert snapshot.queue(celery_queue).ready == 1
