"""Running a failed Celery task again when its arguments were not captured: on RabbitMQ, a queue
with a dead-letter exchange keeps the failed message, and its arguments are read from there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.celery_fixtures import wait_for
from tests.monitor.celery_fleet import AUTH, Fleet, run_again, running_fleet, send

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

#: The app's queue dead-letters (a failure is rejected, not acknowledged) to ``{queue}.dead``.
DEAD_LETTERING = """
from kombu import Exchange, Queue
NAME = app.main
app.conf.task_queues = (
    Queue(NAME, Exchange(NAME), routing_key=NAME, queue_arguments={
        "x-dead-letter-exchange": NAME + ".dlx", "x-dead-letter-routing-key": NAME + ".dead"}),
    Queue(NAME + ".dead", Exchange(NAME + ".dlx"), routing_key=NAME + ".dead"),
)
app.conf.task_acks_late = True
app.conf.task_acks_on_failure_or_timeout = False
"""


@pytest.fixture(scope="module")
def fleet(rabbitmq_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    directory = tmp_path_factory.mktemp("runagain-rabbitmq")
    with running_fleet(rabbitmq_url, redis_url, directory, capture=False, conf=DEAD_LETTERING) as fleet:
        yield fleet


def test_the_arguments_come_from_the_dead_letter_when_they_were_not_captured(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:dead"
    send(fleet, "broken", key)
    run = fleet.failed_run("broken")
    trace = httpx.get(f"{fleet.monitor}/api/traces/{run['trace_id']}", headers=AUTH).json()
    (span,) = [s for s in trace["spans"] if s["span_id"] == run["span_id"]]
    assert "celery.task.args" not in span["attributes"]

    def dead_letter() -> Any:
        page = httpx.get(
            f"{fleet.monitor}/api/queues/{fleet.app.queue}/dead-letters", headers=AUTH, timeout=60
        )
        page = page.json()
        return page["items"] if page.get("total") == 1 else None

    (letter,) = wait_for(dead_letter, "the failed task in the dead-letter queue")
    assert (letter["actor"], letter["args"]) == ("broken", [key])

    response = run_again(fleet, run)
    assert response.status_code == 200, response.text
    wait_for(lambda: fleet.runs.llen(key) == 2, "the task to run again with its arguments")
    assert run_again(fleet, run).status_code == 409


def test_without_captured_arguments_or_a_dead_letter_it_says_both(fleet: Fleet) -> None:
    key = f"{fleet.prefix}:purged"
    send(fleet, "broken", key)
    wait_for(lambda: fleet.runs.llen(key) == 1, "the task to fail")
    purged = httpx.delete(f"{fleet.monitor}/api/queues/{fleet.app.queue}/dead-letters", headers=AUTH)
    assert purged.status_code == 200
    items = httpx.get(
        f"{fleet.monitor}/api/runs", params={"actor": "broken", "status": "error"}, headers=AUTH
    ).json()["items"]
    refused = [run_again(fleet, run) for run in items]
    errors = [
        r.json()["error"] for r in refused if r.status_code == 409 and "not recorded" in r.json()["error"]
    ]
    assert errors and all("nor is the task a dead letter" in error for error in errors)
