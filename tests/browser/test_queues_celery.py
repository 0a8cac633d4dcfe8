"""The Queues page on a real Celery broker (Redis): ready tasks per priority step, what workers hold
unacknowledged split into countdown/eta and reserved, and the oldest unacknowledged task against
the visibility timeout, as Redis holds them.

The layout is ``tests.celery_fixtures.celery_redis_truth``'s (a worker holding 2 countdown tasks and
2 reserved ones, an unconsumed queue with tasks at priorities 0, 3 and 9), plus one queue whose
only unacknowledged entry was taken 97 % of the visibility timeout ago: a task about to be
delivered again.

With a monitor reading a Dramatiq namespace and a Celery layout at once, every queue says its
library, and the page filters by it.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from celery import Celery

from tasklens.monitor import MonitorSettings
from tests.browser.conftest import screenshot
from tests.browser.harness import MonitorServer
from tests.celery_fixtures import PRIORITY_TASKS, CeleryRedisTruth, celery_redis_truth
from tests.several_brokers import Layout

pytestmark = pytest.mark.redis

#: kombu's default visibility timeout, which the test app keeps, in seconds.
VISIBILITY_TIMEOUT = 3600
#: How long ago a worker took the stale queue's task, as a share of the visibility timeout.
STALE_SHARE = 0.97
#: How far a shown age may be from the broker's: the page polls every 5 s, reads are cached 0.5 s.
AGE_TOLERANCE = 8.0


@dataclass
class CeleryQueues:
    truth: CeleryRedisTruth
    monitor: MonitorServer
    stale_queue: str
    stale_taken: float


@pytest.fixture(scope="module")
def celery_queues(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryQueues]:
    name = "t" + uuid.uuid4().hex[:10]
    with celery_redis_truth(redis_url, name, tmp_path_factory.mktemp("celery-app")) as truth:
        prefix = truth.app.prefix
        stale_queue, tag = f"{name}.stale", f"{name}-stale"
        taken = time.time() - STALE_SHARE * VISIBILITY_TIMEOUT
        # An entry as kombu writes it when a worker takes a task: [message, exchange, routing key].
        message = {"body": "", "headers": {"task": "quick", "id": tag}, "properties": {"delivery_tag": tag}}
        client = redis.Redis.from_url(redis_url)
        client.hset(f"{prefix}unacked", tag, json.dumps([message, "", stale_queue]))
        client.zadd(f"{prefix}unacked_index", {tag: taken})
        client.close()
        monitor = MonitorServer(
            MonitorSettings(
                broker_url=truth.app.url,
                library="celery",
                transport_options={"global_keyprefix": prefix},
                cache_ttl=0.5,
                store_path=str(tmp_path_factory.mktemp("store") / "telemetry.db"),
            )
        ).start()
        try:
            yield CeleryQueues(truth, monitor, stale_queue, taken)
        finally:
            monitor.stop()


def oldest_taken(truth: CeleryRedisTruth, queue: str) -> float:
    """When a worker took the queue's oldest unacknowledged entry, from Redis directly."""
    client = redis.Redis.from_url(truth.redis_url)
    try:
        prefix = truth.app.prefix
        tags = [
            tag for tag, entry in client.hgetall(f"{prefix}unacked").items() if json.loads(entry)[2] == queue
        ]
        return min(float(client.zscore(f"{prefix}unacked_index", tag) or 0) for tag in tags)
    finally:
        client.close()


def seconds(text: str) -> float:
    """A duration as the dashboard writes it ("850 µs", "12.4 ms", "4.2 s", "3m 05s", "2h 10m")."""
    text = text.strip()
    for pattern, scale in ((r"([\d.]+) µs", 1e-6), (r"([\d.]+) ms", 1e-3), (r"([\d.]+) s", 1.0)):
        if match := re.fullmatch(pattern, text):
            return float(match.group(1)) * scale
    if match := re.fullmatch(r"(\d+)m (\d+)s", text):
        return int(match.group(1)) * 60 + int(match.group(2))
    if match := re.fullmatch(r"(\d+)h (\d+)m", text):
        return int(match.group(1)) * 3600 + int(match.group(2)) * 60
    raise AssertionError(f"not a duration: {text!r}")


def column(page: Any, row: Any, header: str) -> Any:
    """The cell of ``row`` under the Queues table's column ``header``."""
    headers = [text.strip() for text in page.locator("#queue-counts thead th").all_inner_texts()]
    return row.locator("td").nth(headers.index(header))


def test_celery_queues_show_priority_steps_unacked_split_and_the_oldest_unacked_against_the_timeout(
    page: Any, celery_queues: CeleryQueues
) -> None:
    from playwright.sync_api import expect

    truth, monitor = celery_queues.truth, celery_queues.monitor
    held_queue, prio_queue, stale_queue = truth.app.queue, truth.prio_queue, celery_queues.stale_queue
    page.goto(f"{monitor.url}/queues")
    expect(page.locator(f'#queue-counts tr.queue-detail[data-queue="{stale_queue}"]')).to_be_visible()
    held = truth.read()
    assert held[prio_queue]["priorities"] == {0: 2, 3: 1, 6: 0, 9: 3} == {0: 0, 6: 0, **PRIORITY_TASKS}
    assert (held[held_queue]["delayed"], held[held_queue]["in_flight"]) == (2, 2)

    for queue in (held_queue, prio_queue):
        row = page.locator(f'#queue-counts tr.has-detail[data-queue="{queue}"]')
        detail = page.locator(f'#queue-counts tr.queue-detail[data-queue="{queue}"]')
        expected = held[queue]
        for step, number in expected["priorities"].items():
            expect(detail.locator(f'.step[data-step="{step}"] .step-count')).to_have_text(str(number))
        expect(detail.locator(".step")).to_have_count(4)
        expect(detail.locator(".priority-steps")).to_contain_text("Celery serves step 0 first")
        expect(column(page, row, "Ready")).to_have_text(str(expected["ready"]))
        expect(column(page, row, "Delayed")).to_have_text(str(expected["delayed"]))
        expect(column(page, row, "In flight")).to_have_text(str(expected["in_flight"]))
        expect(detail.locator(".unacked-eta")).to_have_text(str(expected["delayed"]))
        expect(detail.locator(".unacked-reserved")).to_have_text(str(expected["in_flight"]))
        expect(detail.locator(".unacked-total")).to_have_text(
            str(expected["delayed"] + expected["in_flight"])
        )
        expect(detail.locator(".unacked-split")).to_contain_text("countdown/eta")
        # Celery on Redis keeps no dead letters: unknown, never 0.
        expect(column(page, row, "Dead")).to_have_text("—")
    expect(page.locator('#queue-counts tr.queue-detail .step[data-step="0"]').first).to_have_attribute(
        "title", "priorities 0\u20132"
    )

    # The worker took its tasks seconds ago: shown with the timeout, no warning.
    held_row = page.locator(f'#queue-counts tr.has-detail[data-queue="{held_queue}"]')
    held_cell = column(page, held_row, "Oldest unacked")
    expect(held_cell).to_have_attribute("data-redelivery", "no")
    expect(held_cell.locator(".visibility-timeout")).to_have_text(" of 1h 00m")
    shown = seconds(held_cell.locator(".unacked-age").inner_text())
    assert abs(shown - (time.time() - oldest_taken(truth, held_queue))) <= AGE_TOLERANCE
    assert "warn" not in (held_cell.get_attribute("class") or "")
    # No task of the priority queue is unacknowledged.
    prio_row = page.locator(f'#queue-counts tr.has-detail[data-queue="{prio_queue}"]')
    expect(column(page, prio_row, "Oldest unacked")).to_have_text("—")

    # 97 % of the visibility timeout: about to be delivered again, said in words, not only colour.
    stale_row = page.locator(f'#queue-counts tr.has-detail[data-queue="{stale_queue}"]')
    stale_cell = column(page, stale_row, "Oldest unacked")
    expect(stale_cell).to_have_attribute("data-redelivery", "soon")
    expect(stale_cell).to_have_class(re.compile(r"\bwarn\b"))
    expect(stale_cell.locator(".redelivery")).to_have_text("⚠ near the visibility timeout: redelivery soon")
    shown = seconds(stale_cell.locator(".unacked-age").inner_text())
    assert abs(shown - (time.time() - celery_queues.stale_taken)) <= AGE_TOLERANCE
    expect(column(page, stale_row, "In flight")).to_have_text("1")
    expect(column(page, stale_row, "Delayed")).to_have_text("0")

    # One library: no Library column and no filter.
    expect(page.locator("#queue-counts thead th", has_text="Library")).to_have_count(0)
    expect(page.locator("#queue-library")).to_be_hidden()
    screenshot(page, "queues-celery")


#: A Celery queue next to the Dramatiq ones, with a name that is markup.
HOSTILE_QUEUE = '<img src=x onerror="window.hostile=1">'


@pytest.fixture(scope="module")
def two_brokers(redis_url: str) -> Iterator[tuple[Layout, MonitorServer]]:
    """A monitor reading a Dramatiq namespace and a Celery layout on the real Redis."""
    layout = Layout(redis_url, "t" + uuid.uuid4().hex[:10])
    app = Celery(f"{layout.namespace}-hostile", broker=redis_url)
    app.conf.broker_transport_options = {"global_keyprefix": layout.prefix}
    app.conf.broker_connection_retry_on_startup = False
    app.send_task("orders.ship", queue=HOSTILE_QUEUE)
    app.close()
    monitor = MonitorServer(layout.monitor_settings(cache_ttl=0.5)).start()
    try:
        yield layout, monitor
    finally:
        monitor.stop()
        layout.close()


def library_rows(page: Any) -> Any:
    return page.locator("#queue-counts tbody tr[data-library]")


def test_queues_of_two_libraries_get_a_library_column_and_filter(
    page: Any, two_brokers: tuple[Layout, MonitorServer]
) -> None:
    from playwright.sync_api import expect

    _, monitor = two_brokers
    page.goto(f"{monitor.url}/queues")

    expect(page.locator("#queue-counts thead th", has_text="Library")).to_have_count(1)
    select = page.locator("#queue-library")
    expect(select).to_be_visible()
    expect(select.locator("option")).to_have_text(["All libraries", "celery", "dramatiq"])
    expect(library_rows(page)).to_have_count(5)
    hostile = page.locator("#queue-counts tbody tr[data-library=celery]").filter(has_text="onerror")
    expect(hostile.locator("td").first).to_have_text(HOSTILE_QUEUE)
    expect(column(page, hostile, "Ready")).to_have_text("1")
    expect(page.locator("#queue-counts img")).to_have_count(0)
    assert page.evaluate("window.hostile") is None
    emails = page.locator('#queue-counts tbody tr[data-library=dramatiq][data-queue="emails"]')
    expect(column(page, emails, "Library")).to_have_text("dramatiq")
    expect(column(page, emails, "Ready")).to_have_text("1")
    # The same name in both libraries: two rows, each with its own broker's counts.
    shared = {
        lib: page.locator(f'#queue-counts tbody tr[data-library={lib}][data-queue="shared"]')
        for lib in ("dramatiq", "celery")
    }
    expect(column(page, shared["dramatiq"], "Ready")).to_have_text("3")
    expect(column(page, shared["dramatiq"], "Dead")).to_have_text("2")
    expect(column(page, shared["celery"], "Ready")).to_have_text("5")
    # Celery on Redis keeps no dead letters: unknown, never 0; Dramatiq has no unacked column value.
    expect(column(page, shared["celery"], "Dead")).to_have_text("—")
    expect(column(page, shared["dramatiq"], "Oldest unacked")).to_have_text("—")

    select.select_option("dramatiq")
    expect(library_rows(page)).to_have_count(2)
    assert {row.get_attribute("data-queue") for row in library_rows(page).all()} == {"emails", "shared"}
    expect(page.locator("#queue-counts tr.queue-detail")).to_have_count(0)
    select.select_option("celery")
    expect(library_rows(page)).to_have_count(3)
    assert {row.get_attribute("data-queue") for row in library_rows(page).all()} == {
        "billing",
        "shared",
        HOSTILE_QUEUE,
    }
    expect(page.locator("#queue-counts tr.queue-detail")).to_have_count(3)
    screenshot(page, "queues-libraries")

    # The filter is read from the address when the page opens.
    page.goto(f"{monitor.url}/queues?library=dramatiq")
    expect(page.locator("#queue-library")).to_have_value("dramatiq")
    expect(library_rows(page)).to_have_count(2)
