"""The Workers page with a monitor reading several brokers: a Dramatiq worker announced on Redis
and a Celery worker's heartbeats, each with its library and the queues it says it consumes, a
library filter, and one line per broker saying whether it answered."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from tasklens.dramatiq import OpenTelemetryMiddleware, announcement
from tasklens.monitor import MonitorSettings
from tasklens.monitor.settings import BrokerSpec
from tests.brokers.workers import running_worker
from tests.browser.conftest import screenshot
from tests.browser.harness import MonitorServer, wait_until
from tests.celery_fixtures import DEADLINE, celery_worker, delete_prefixed, write_app

pytestmark = pytest.mark.redis

#: A Redis nothing listens on: the third broker, which does not answer.
DOWN_URL = "redis://127.0.0.1:1/0"
#: Seconds between the Dramatiq worker's announcements.
INTERVAL = 0.5


@dataclass
class Fleet:
    monitor: MonitorServer
    dramatiq_queue: str
    dramatiq_hostname: str
    celery_hostname: str


@pytest.fixture(scope="module")
def fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    name = "t" + uuid.uuid4().hex[:10]
    namespace, queue = f"{name}-dq", f"{name}-orders"
    # A node name that is markup: the page shows it as text.
    celery_hostname = f"{name}-<b>bold</b>@localhost"
    app = write_app(tmp_path_factory.mktemp("celery-app"), name, redis_url, redis_url)
    broker = RedisBroker(url=redis_url, namespace=namespace)
    broker.add_middleware(OpenTelemetryMiddleware())

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}-ship")
    def ship() -> None: ...

    settings = MonitorSettings(
        brokers=(
            BrokerSpec(f"{redis_url}?namespace={namespace}", library="dramatiq"),
            BrokerSpec(redis_url, library="celery"),
            BrokerSpec(DOWN_URL, library="dramatiq"),
        ),
        transport_options={"global_keyprefix": app.prefix},
        broker_timeout=5.0,
        cache_ttl=0.5,
        store_path=str(tmp_path_factory.mktemp("store") / "telemetry.db"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(announcement.INTERVAL_ENV, str(INTERVAL))
        with running_worker(broker, threads=2), celery_worker(app, celery_hostname, "-Q", app.queue):
            monitor = MonitorServer(settings).start()
            try:
                wait_until(
                    lambda: (
                        {w["messaging_system"] for w in monitor.get("/api/workers")["items"] or []}
                        == {"dramatiq", "celery"}
                    ),
                    what="the Dramatiq and the Celery worker to be seen",
                    timeout=DEADLINE,
                )
                yield Fleet(monitor, queue, f"{os.getpid()}@{socket.gethostname()}", celery_hostname)
            finally:
                monitor.stop()
    broker.close()
    delete_prefixed(redis_url, f"{namespace}:")
    delete_prefixed(redis_url, app.prefix)


def worker_rows(page: Any) -> Any:
    return page.locator("#broker-workers tbody tr[data-worker]")


def column(page: Any, row: Any, header: str) -> Any:
    headers = [text.strip() for text in page.locator("#broker-workers thead th").all_inner_texts()]
    return row.locator("td").nth(headers.index(header))


def test_workers_of_two_libraries_with_their_queues_a_filter_and_each_brokers_answer(
    page: Any, fleet: Fleet
) -> None:
    from playwright.sync_api import expect

    page.goto(f"{fleet.monitor.url}/workers")
    expect(worker_rows(page)).to_have_count(2)
    expect(page.locator("#broker-workers thead th", has_text="Library")).to_have_count(1)
    select = page.locator("#worker-library")
    expect(select).to_be_visible()
    expect(select.locator("option")).to_have_text(["All libraries", "celery", "dramatiq"])

    dramatiq_row = page.locator("#broker-workers tr[data-library=dramatiq]")
    expect(dramatiq_row.locator("td").first).to_have_text(fleet.dramatiq_hostname)
    expect(column(page, dramatiq_row, "Library")).to_have_text("dramatiq")
    expect(column(page, dramatiq_row, "Queues")).to_have_text(fleet.dramatiq_queue)
    expect(column(page, dramatiq_row, "Pool")).to_have_text("threads \u00d7 2")
    celery_row = page.locator("#broker-workers tr[data-library=celery]")
    expect(celery_row.locator("td").first).to_have_text(fleet.celery_hostname)
    expect(page.locator("#broker-workers b")).to_have_count(0)
    expect(column(page, celery_row, "Library")).to_have_text("celery")
    # Celery's heartbeats do not say which queues it consumes: unknown, not empty.
    expect(column(page, celery_row, "Queues")).to_have_text("—")

    # One line per broker: the two that answered and the one that did not, with its error.
    lines = page.locator("#worker-brokers li")
    expect(lines).to_have_count(3)
    expect(page.locator("#worker-brokers li[data-up=true]")).to_have_count(2)
    down = page.locator("#worker-brokers li[data-up=false]")
    expect(down).to_contain_text("did not answer")
    expect(down).to_contain_text("127.0.0.1:1")
    expect(down.locator(".broker-error")).not_to_have_text(": ?")
    expect(page.locator("#worker-brokers li[data-library=celery] .broker-workers")).to_have_text(
        ": workers 1"
    )
    screenshot(page, "workers-libraries")

    select.select_option("celery")
    expect(worker_rows(page)).to_have_count(1)
    expect(worker_rows(page)).to_have_attribute("data-library", "celery")
    select.select_option("dramatiq")
    expect(worker_rows(page)).to_have_count(1)
    expect(worker_rows(page)).to_have_attribute("data-library", "dramatiq")

    # The filter is read from the address when the page opens.
    page.goto(f"{fleet.monitor.url}/workers?library=celery")
    expect(page.locator("#worker-library")).to_have_value("celery")
    expect(worker_rows(page)).to_have_count(1)
    expect(worker_rows(page)).to_have_attribute("data-library", "celery")
