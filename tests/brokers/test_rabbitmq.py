"""Dramatiq on RabbitMQ, read and acted on by RabbitmqInspector, checked against a real Dramatiq
broker and real workers: every count it claims is exact, and what it cannot know is None."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dramatiq
import pytest

from tasklens.brokers import BrokerUnavailable, MessageNotFound, QueueNotFound, open_broker
from tasklens.brokers.rabbitmq import NoQueuesKnown, RabbitmqInspector
from tests.brokers.workers import closed_port, dead_count, make_dead, running_worker, wait_until

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def queue(unique_name: str) -> str:
    return f"{unique_name}-q"


@pytest.fixture
def inspector(rabbitmq_url: str, queue: str) -> Iterator[RabbitmqInspector]:
    broker = open_broker(rabbitmq_url, queues=[queue], library="dramatiq")
    assert isinstance(broker, RabbitmqInspector)
    yield broker
    broker.close()


def fix_actor(broker: Any, queue: str, processed: list[str]) -> None:
    """Replace the failing actor by one that records the label of each message it runs."""
    broker.actors.pop(f"{queue}-fail")

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}-fail")
    def fixed(number: int, *, label: str = "") -> None:
        processed.append(label)


def test_counts_it_claims_are_exact_and_the_rest_unknown(
    rabbitmq_broker: Any, inspector: RabbitmqInspector, queue: str
) -> None:
    release, started = threading.Event(), threading.Event()

    @dramatiq.actor(broker=rabbitmq_broker, queue_name=queue, actor_name=f"{queue}-hold")
    def hold() -> None:
        started.set()
        release.wait(20)

    @dramatiq.actor(broker=rabbitmq_broker, queue_name=queue, actor_name=f"{queue}-noop")
    def noop(number: int) -> None:
        pass

    make_dead(rabbitmq_broker, inspector, queue, 2)
    with running_worker(rabbitmq_broker):
        hold.send()
        assert started.wait(10)
        for n in range(3):
            noop.send(n)
        for n in range(4):
            noop.send_with_options(args=(n,), delay=60_000)
        try:
            # The worker takes the delayed messages off the delay queue and holds them.
            busy = wait_until(lambda: inspector.snapshot(), lambda s: s.queue(queue).delayed is None)
        finally:
            release.set()
    stats = busy.queue(queue)
    assert (stats.ready, stats.dead, stats.consumers) == (3, 2, 1)
    assert (stats.in_flight, stats.delayed, stats.oldest_age) == (None, None, None)
    assert busy.workers == 1

    # With no worker attached the delay queue's count is every delayed message.
    idle = inspector.snapshot().queue(queue)
    assert (idle.ready, idle.delayed, idle.dead, idle.consumers) == (3, 4, 2, 0)
    assert idle.in_flight is None


def test_an_empty_queue_has_no_oldest_message(
    inspector: RabbitmqInspector, queue: str, rabbitmq_broker: Any
) -> None:
    rabbitmq_broker.declare_queue(queue, ensure=True)
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.delayed, stats.dead, stats.oldest_age) == (0, 0, 0, 0.0)


def test_a_queue_that_does_not_exist_holds_nothing(rabbitmq_url: str, unique_name: str) -> None:
    # Each missing queue closes a channel; the reading goes on on a new one.
    names = [f"{unique_name}-a", f"{unique_name}-b"]
    with open_broker(rabbitmq_url, queues=names, library="dramatiq") as inspector:
        snapshot = inspector.snapshot()
        assert [(q.name, q.ready, q.dead) for q in snapshot.queues] == [(n, 0, 0) for n in names]
        with pytest.raises(QueueNotFound):
            inspector.dead_letters(names[0])


def test_browsing_dead_letters_loses_none_and_keeps_their_order(
    rabbitmq_broker: Any, inspector: RabbitmqInspector, queue: str
) -> None:
    ids = make_dead(rabbitmq_broker, inspector, queue, 4)

    page = inspector.dead_letters(queue, offset=1, limit=2)
    assert page.total == 4
    assert [letter.message_id for letter in page.items] == ids[1:3]
    letter = inspector.dead_letter(queue, ids[3])
    assert letter.actor == f"{queue}-fail"
    assert (letter.args, letter.kwargs) == ([3], {"label": "n3"})
    assert letter.died_at is not None and abs(letter.died_at - time.time()) < 30
    with pytest.raises(MessageNotFound):
        inspector.dead_letter(queue, "no-such-id")

    again = inspector.dead_letters(queue, limit=10)
    assert [letter.message_id for letter in again.items] == ids
    assert dead_count(inspector, queue) == 4


def test_requeued_dead_letters_are_processed_by_a_worker(
    rabbitmq_broker: Any, inspector: RabbitmqInspector, queue: str
) -> None:
    ids = make_dead(rabbitmq_broker, inspector, queue, 4)
    processed: list[str] = []
    fix_actor(rabbitmq_broker, queue, processed)

    assert inspector.requeue_dead(queue, [ids[0], ids[2]]) == 2
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.dead) == (2, 2)
    assert [letter.message_id for letter in inspector.dead_letters(queue).items] == [ids[1], ids[3]]

    with running_worker(rabbitmq_broker):
        wait_until(lambda: sorted(processed), lambda done: done == ["n0", "n2"])
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.dead) == (0, 2)


def test_requeue_all_resets_retries(rabbitmq_broker: Any, inspector: RabbitmqInspector, queue: str) -> None:
    make_dead(rabbitmq_broker, inspector, queue, 3)
    attempts: list[int] = []
    rabbitmq_broker.add_middleware(dramatiq.middleware.CurrentMessage())
    rabbitmq_broker.actors.pop(f"{queue}-fail")

    @dramatiq.actor(broker=rabbitmq_broker, queue_name=queue, actor_name=f"{queue}-fail")
    def fixed(number: int, *, label: str = "") -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        assert message is not None
        attempts.append(message.options.get("retries", 0))

    progress: list[tuple[int, int]] = []
    assert inspector.requeue_dead(queue, reset_retries=True, progress=lambda *p: progress.append(p)) == 3
    assert progress[-1] == (3, 3)
    assert dead_count(inspector, queue) == 0
    with running_worker(rabbitmq_broker):
        wait_until(lambda: len(attempts), lambda n: n == 3)
    assert attempts == [0, 0, 0]


def test_delete_and_purge(rabbitmq_broker: Any, inspector: RabbitmqInspector, queue: str) -> None:
    ids = make_dead(rabbitmq_broker, inspector, queue, 4)

    assert inspector.delete_dead(queue, [ids[0]]) == 1
    with pytest.raises(MessageNotFound, match="nothing was changed"):
        inspector.delete_dead(queue, [ids[1], "no-such-id"])
    with pytest.raises(MessageNotFound, match="nothing was changed"):
        inspector.requeue_dead(queue, ["no-such-id"])
    assert [letter.message_id for letter in inspector.dead_letters(queue).items] == ids[1:]

    assert inspector.purge_dead(queue) == 3
    stats = inspector.snapshot().queue(queue)
    assert (stats.ready, stats.dead) == (0, 0)


def test_rabbitmq_needs_a_source_of_queue_names(rabbitmq_url: str) -> None:
    with pytest.raises(NoQueuesKnown, match=r"amqp://guest:\*\*\*@127.0.0.1:5672/%2F cannot list its queues"):
        open_broker(rabbitmq_url, library="dramatiq")


def test_queues_come_from_the_app_module(
    rabbitmq_url: str, unique_name: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"app_{unique_name}"
    (tmp_path / f"{module}.py").write_text(
        "import dramatiq\n"
        "from dramatiq.brokers.rabbitmq import RabbitmqBroker\n"
        f"broker = RabbitmqBroker(url={rabbitmq_url!r})\n"
        f"@dramatiq.actor(broker=broker, queue_name='{unique_name}-emails')\n"
        "def send_email(): pass\n"
        f"@dramatiq.actor(broker=broker, queue_name='{unique_name}-reports')\n"
        "def build_report(): pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with open_broker(rabbitmq_url, app=f"{module}:broker") as inspector:
        names = [q.name for q in inspector.snapshot().queues]
    assert names == [f"{unique_name}-emails", f"{unique_name}-reports"]


def test_a_down_broker_is_named_with_its_password_redacted() -> None:
    port = closed_port()
    inspector = open_broker(
        f"amqp://guest:hunter2@127.0.0.1:{port}/%2F", queues=["default"], timeout=2, library="dramatiq"
    )
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as caught:
        inspector.snapshot()
    assert time.monotonic() - started < 2
    assert str(caught.value) == f"cannot reach amqp://guest:***@127.0.0.1:{port}/%2F: Connection refused"


def test_a_silent_broker_times_out_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        inspector = open_broker(
            f"amqp://guest:hunter2@127.0.0.1:{port}/%2F", queues=["default"], timeout=0.5, library="dramatiq"
        )
        started = time.monotonic()
        with pytest.raises(
            BrokerUnavailable, match=rf"cannot reach amqp://guest:\*\*\*@127.0.0.1:{port}/%2F"
        ):
            inspector.snapshot()
        assert time.monotonic() - started < 2


class ManagementApi:
    """A stand-in for RabbitMQ's management API (the plugin is not enabled on the shared server)
    answering ``GET /api/queues/{vhost}`` with rows shaped as RabbitMQ 3.x returns them."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.requests: list[tuple[str, str | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append((self.path, self.headers.get("Authorization")))
                body = json.dumps(api.rows).encode()
                self.send_response(200 if self.path.startswith("/api/queues/%2F") else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_management_api_adds_in_flight_counts_and_discovery(rabbitmq_url: str) -> None:
    rows = [
        {
            "name": "emails",
            "messages": 12,
            "messages_ready": 10,
            "messages_unacknowledged": 2,
            "consumers": 3,
        },
        {
            "name": "emails.DQ",
            "messages": 5,
            "messages_ready": 0,
            "messages_unacknowledged": 5,
            "consumers": 3,
        },
        {
            "name": "emails.XQ",
            "messages": 7,
            "messages_ready": 7,
            "messages_unacknowledged": 0,
            "consumers": 0,
        },
        {"name": "fresh", "consumers": 0},  # declared a moment ago: no statistics yet
    ]
    api = ManagementApi(rows)
    try:
        with open_broker(rabbitmq_url, management_url=api.url, library="dramatiq") as inspector:
            snapshot = inspector.snapshot()
    finally:
        api.close()
    emails = snapshot.queue("emails")
    assert (emails.ready, emails.in_flight, emails.delayed, emails.dead, emails.consumers) == (10, 2, 5, 7, 3)
    assert emails.oldest_age is None
    fresh = snapshot.queue("fresh")
    assert (fresh.ready, fresh.in_flight, fresh.delayed, fresh.dead) == (None, None, 0, 0)
    assert snapshot.workers == 3
    path, authorization = api.requests[0]
    assert path.startswith("/api/queues/%2F?columns=")
    assert authorization == "Basic " + base64.b64encode(b"guest:guest").decode()


def test_the_management_api_credentials_come_from_its_url(rabbitmq_url: str) -> None:
    api = ManagementApi([])
    try:
        with open_broker(
            rabbitmq_url, management_url=api.url.replace("//", "//admin:pw@"), library="dramatiq"
        ) as inspector:
            assert inspector.snapshot().queues == []
    finally:
        api.close()
    assert api.requests[0][1] == "Basic " + base64.b64encode(b"admin:pw").decode()


def test_an_unreachable_management_api_is_named_redacted(rabbitmq_url: str) -> None:
    port = closed_port()
    inspector = open_broker(
        rabbitmq_url, management_url=f"http://admin:hunter2@127.0.0.1:{port}", library="dramatiq"
    )
    with inspector, pytest.raises(BrokerUnavailable) as caught:
        inspector.snapshot()
    assert "hunter2" not in str(caught.value)
    assert f"http://admin:***@127.0.0.1:{port}/api/queues/%2F" in str(caught.value)
