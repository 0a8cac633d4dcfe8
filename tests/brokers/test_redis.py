"""Dramatiq on Redis, read and acted on by RedisInspector, checked against a real Dramatiq broker
and real workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.middleware import CurrentMessage

from tasklens.brokers import BrokerUnavailable, MessageNotFound, QueueNotFound, open_broker
from tasklens.brokers.redis import RedisInspector
from tests.brokers.wire import recording_proxy
from tests.brokers.workers import closed_port, dead_count, make_dead, running_worker, wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def inspector(redis_url: str, namespace: str) -> Iterator[RedisInspector]:
    broker = open_broker(f"{redis_url}?namespace={namespace}")
    assert isinstance(broker, RedisInspector)
    yield broker
    broker.close()


@pytest.fixture
def queue(unique_name: str) -> str:
    return f"{unique_name}-q"


def test_every_count_matches_the_ground_truth(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    release, started = threading.Event(), threading.Event()

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-hold")
    def hold() -> None:
        started.set()
        release.wait(20)

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop(number: int) -> None:
        pass

    make_dead(redis_broker, inspector, queue, 2)
    with running_worker(redis_broker):
        hold.send()
        assert started.wait(10)
        for n in range(3):
            noop.send(n)
        for n in range(4):
            noop.send_with_options(args=(n,), delay=60_000)
        try:
            snapshot = inspector.snapshot()
        finally:
            release.set()

    stats = snapshot.queue(queue)
    assert (stats.ready, stats.delayed, stats.in_flight, stats.dead) == (3, 4, 1, 2)
    assert stats.oldest_age is not None and 0 <= stats.oldest_age < 10
    assert snapshot.workers == 1
    assert [q.name for q in snapshot.queues] == [queue]


def test_oldest_age_comes_from_when_the_head_message_became_ready(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop() -> None:
        pass

    assert inspector.snapshot().queues == []
    two_minutes_ago = int(time.time() * 1000) - 120_000
    noop.send_with_options(otel_ready_at=two_minutes_ago)
    noop.send()

    stats = inspector.snapshot().queue(queue)
    assert stats.ready == 2
    assert stats.oldest_age is not None and 120 <= stats.oldest_age < 130


def test_declared_queues_are_reported_when_empty(redis_url: str, namespace: str) -> None:
    with open_broker(f"{redis_url}?namespace={namespace}", queues=["idle"]) as inspector:
        stats = inspector.snapshot().queue("idle")
    assert (stats.ready, stats.delayed, stats.in_flight, stats.dead, stats.oldest_age) == (0, 0, 0, 0, 0.0)


def test_discovery_scans_and_reads_every_queue_in_one_round_trip(
    redis_broker: Any, redis_url: str, namespace: str, redis_client: Any
) -> None:
    queues = [f"{namespace}-{n}" for n in range(5)]
    for name in queues:
        actor = dramatiq.actor(lambda: None, broker=redis_broker, queue_name=name, actor_name=f"{name}-a")
        actor.send()
        actor.send_with_options(delay=60_000)

    with recording_proxy("127.0.0.1", 6379) as proxy:
        inspector = open_broker(f"redis://127.0.0.1:{proxy.port}/0?namespace={namespace}")
        inspector.snapshot()  # connects (handshake commands) and loads the read script
        proxy.reset()
        with monitored(redis_client, proxy, namespace) as seen:
            snapshot = inspector.snapshot()
        inspector.close()

    assert [q.name for q in snapshot.queues] == sorted(queues)
    assert all((q.ready, q.delayed) == (1, 1) for q in snapshot.queues)
    names = proxy.command_names()
    assert "KEYS" not in names
    assert "SCAN" in names
    # Every SCAN page is a round trip; everything else (5 queues and the workers) is one more.
    assert proxy.round_trips == names.count("SCAN") + 1
    assert names.count("EVALSHA") == 5
    # What Redis ran, scripts included, for this client and this namespace: never KEYS.
    assert seen, "MONITOR saw nothing"
    assert "keys" not in {command.split()[0].lower() for command in seen}


class monitored:
    """Collect the commands Redis's MONITOR shows for the proxy's connections or (run by a
    script) touching the namespace."""

    def __init__(self, client: Any, proxy: Any, namespace: str) -> None:
        self.client, self.proxy, self.namespace = client, proxy, namespace
        self.sentinel = f"{namespace}-monitor-done"
        self.commands: list[str] = []

    def __enter__(self) -> list[str]:
        ready = threading.Event()
        self.thread = threading.Thread(target=self._collect, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(5)
        return self.commands

    def __exit__(self, *exc_info: object) -> None:
        self.client.echo(self.sentinel)
        self.thread.join(10)
        assert not self.thread.is_alive()

    def _collect(self, ready: threading.Event) -> None:
        ours = {f"{host}:{port}" for host, port in self.proxy.upstream_addresses}
        with self.client.monitor() as monitor:
            ready.set()
            for event in monitor.listen():
                command = event["command"]
                if self.sentinel in command:
                    return
                address = f"{event.get('client_address')}:{event.get('client_port')}"
                by_script = event.get("client_type") == "lua" and self.namespace in command
                if address in ours or by_script:
                    self.commands.append(command)


def test_dead_letters_are_paged_newest_first_and_shown_whole(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    ids = make_dead(redis_broker, inspector, queue, 3)

    page = inspector.dead_letters(queue, offset=0, limit=2)
    assert page.total == 3 and len(page.items) == 2
    rest = inspector.dead_letters(queue, offset=2, limit=2)
    letters = page.items + rest.items
    assert sorted(letter.message_id for letter in letters) == sorted(ids)
    died = [letter.died_at or 0 for letter in letters]
    assert died == sorted(died, reverse=True)

    letter = inspector.dead_letter(queue, ids[1])
    assert letter.actor == f"{queue}-fail"
    assert (letter.args, letter.kwargs) == ([1], {"label": "n1"})
    assert letter.died_at is not None and abs(letter.died_at - time.time()) < 30
    assert letter.enqueued_at is not None and letter.enqueued_at <= letter.died_at


def test_a_retried_dead_letter_carries_the_traceback(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    @dramatiq.actor(
        broker=redis_broker,
        queue_name=queue,
        actor_name=f"{queue}-flaky",
        max_retries=1,
        min_backoff=1,
        max_backoff=10,
    )
    def flaky() -> None:
        raise ValueError("the database is down")

    message_id = flaky.send().message_id
    with running_worker(redis_broker):
        wait_until(lambda: dead_count(inspector, queue), lambda dead: dead == 1)

    letter = inspector.dead_letter(queue, message_id)
    assert letter.retries == 1
    assert letter.traceback is not None and "ValueError: the database is down" in letter.traceback


def test_requeued_dead_letters_are_processed_by_a_worker(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    ids = make_dead(redis_broker, inspector, queue, 4)
    processed: list[str] = []
    redis_broker.actors.pop(f"{queue}-fail")

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-fail")
    def fixed(number: int, *, label: str = "") -> None:
        processed.append(label)

    assert inspector.requeue_dead(queue, [ids[0], ids[2]]) == 2
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.dead) == (2, 2)
    assert {letter.message_id for letter in inspector.dead_letters(queue).items} == {ids[1], ids[3]}

    with running_worker(redis_broker):
        wait_until(lambda: sorted(processed), lambda done: done == ["n0", "n2"])
        stats = wait_until(lambda: inspector.snapshot().queue(queue), lambda s: s.in_flight == 0)
    assert (stats.ready, stats.in_flight, stats.dead) == (0, 0, 2)


def test_requeue_all_resets_retries_in_batches(
    redis_url: str, redis_broker: Any, namespace: str, queue: str
) -> None:
    inspector = RedisInspector(f"{redis_url}?namespace={namespace}", requeue_batch_size=2)
    make_dead(redis_broker, inspector, queue, 5)
    attempts: list[int] = []
    redis_broker.add_middleware(CurrentMessage())
    redis_broker.actors.pop(f"{queue}-fail")

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-fail")
    def fixed(number: int, *, label: str = "") -> None:
        message = CurrentMessage.get_current_message()
        assert message is not None
        attempts.append(message.options.get("retries", 0))

    progress: list[tuple[int, int]] = []
    assert inspector.requeue_dead(queue, reset_retries=True, progress=lambda *p: progress.append(p)) == 5
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert inspector.snapshot().queue(queue).dead == 0

    with running_worker(redis_broker):
        wait_until(lambda: len(attempts), lambda n: n == 5)
    assert attempts == [0] * 5
    inspector.close()


def test_reset_retries_gives_a_failing_message_its_attempts_again(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    calls: list[int] = []

    @dramatiq.actor(
        broker=redis_broker,
        queue_name=queue,
        actor_name=f"{queue}-flaky",
        max_retries=1,
        min_backoff=1,
        max_backoff=10,
    )
    def flaky() -> None:
        calls.append(1)
        raise ValueError("still down")

    message_id = flaky.send().message_id
    with running_worker(redis_broker):
        wait_until(lambda: dead_count(inspector, queue), lambda dead: dead == 1)
        assert len(calls) == 2
        inspector.requeue_dead(queue, [message_id])  # retries stay at 1: one more attempt
        wait_until(lambda: (len(calls), dead_count(inspector, queue)), lambda s: s == (3, 1))
        inspector.requeue_dead(queue, [message_id], reset_retries=True)  # two attempts again
        wait_until(lambda: (len(calls), dead_count(inspector, queue)), lambda s: s == (5, 1))


def test_a_message_that_died_in_the_delay_queue_runs_now_once_requeued(
    redis_broker: Any, redis_client: Any, inspector: RedisInspector, namespace: str, queue: str
) -> None:
    ran = threading.Event()

    @dramatiq.actor(broker=redis_broker, queue_name=queue, actor_name=f"{queue}-later")
    def later() -> None:
        ran.set()

    # As Dramatiq leaves it when a message is rejected from the delay queue.
    in_a_day = int(time.time() * 1000) + 86_400_000
    message = later.message_with_options(eta=in_a_day, redis_message_id="r1").copy(queue_name=f"{queue}.DQ")
    redis_client.zadd(f"{namespace}:{queue}.XQ", {"r1": in_a_day})
    redis_client.hset(f"{namespace}:{queue}.XQ.msgs", "r1", message.encode())

    assert inspector.requeue_dead(queue, [message.message_id]) == 1
    with running_worker(redis_broker):
        assert ran.wait(10)


def test_delete_and_purge(redis_broker: Any, inspector: RedisInspector, queue: str) -> None:
    ids = make_dead(redis_broker, inspector, queue, 4)

    assert inspector.delete_dead(queue, [ids[0]]) == 1
    assert {letter.message_id for letter in inspector.dead_letters(queue).items} == set(ids[1:])
    with pytest.raises(MessageNotFound, match="nothing was changed"):
        inspector.delete_dead(queue, [ids[1], "no-such-id"])
    assert inspector.snapshot().queue(queue).dead == 3
    with pytest.raises(MessageNotFound):
        inspector.dead_letter(queue, ids[0])

    assert inspector.purge_dead(queue) == 3
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.dead) == (0, 0)


def test_unknown_queue_and_message(inspector: RedisInspector, unique_name: str) -> None:
    for action in (
        lambda: inspector.dead_letters(f"{unique_name}-nowhere"),
        lambda: inspector.purge_dead(f"{unique_name}-nowhere"),
        lambda: inspector.requeue_dead(f"{unique_name}-nowhere"),
    ):
        with pytest.raises(QueueNotFound, match="nowhere"):
            action()


def test_requeue_of_a_missing_id_changes_nothing(
    redis_broker: Any, inspector: RedisInspector, queue: str
) -> None:
    ids = make_dead(redis_broker, inspector, queue, 2)
    with pytest.raises(MessageNotFound, match="no-such-id"):
        inspector.requeue_dead(queue, [ids[0], "no-such-id"])
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.dead) == (0, 2)


def test_a_down_broker_is_named_with_its_password_redacted() -> None:
    port = closed_port()
    inspector = open_broker(f"redis://:hunter2@127.0.0.1:{port}/0", timeout=2, library="dramatiq")
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        inspector.snapshot()
    assert time.monotonic() - started < 2
    assert str(caught.value) == f"cannot reach redis://:***@127.0.0.1:{port}/0: Connection refused"


def test_a_silent_broker_times_out_within_the_timeout() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        inspector = open_broker(f"redis://:hunter2@127.0.0.1:{port}/0", timeout=0.5, library="dramatiq")
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match=rf"cannot reach redis://:\*\*\*@127.0.0.1:{port}/0"):
            inspector.snapshot()
        assert time.monotonic() - started < 1.5
        assert "hunter2" not in str(inspector.redacted_url)


def test_a_connection_cut_while_idle_is_replaced(redis_url: str, namespace: str) -> None:
    with recording_proxy("127.0.0.1", 6379) as proxy:
        inspector = open_broker(f"redis://127.0.0.1:{proxy.port}/0?namespace={namespace}", queues=["q"])
        inspector.snapshot()
        proxy.drop_connections()
        assert inspector.snapshot().queue("q").ready == 0
        inspector.close()


def test_namespace_from_the_url_does_not_reach_redis(redis_url: str, namespace: str) -> None:
    with open_broker(f"{redis_url}?namespace={namespace}") as inspector:
        assert isinstance(inspector, RedisInspector)
        assert inspector.namespace == namespace
        assert inspector.snapshot().workers == 0


def test_other_namespaces_are_not_read(redis_client: Any, redis_url: str, namespace: str) -> None:
    redis_client.rpush(f"{namespace}x:elsewhere", "id")
    try:
        with open_broker(f"{redis_url}?namespace={namespace}") as inspector:
            assert inspector.snapshot().queues == []
    finally:
        redis_client.delete(f"{namespace}x:elsewhere")


def test_a_foreign_key_in_the_namespace_is_not_a_queue(
    redis_client: Any, redis_url: str, namespace: str
) -> None:
    redis_client.set(f"{namespace}:config", "not a Dramatiq queue")
    redis_client.rpush(f"{namespace}:real", "id")
    with open_broker(f"{redis_url}?namespace={namespace}") as inspector:
        assert [q.name for q in inspector.snapshot().queues] == ["real"]
