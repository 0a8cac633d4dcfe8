"""The dashboard as someone paged at night reads it: numbers that agree with each other, failures
told apart by how they ended, backlogs with their age, worker processes by host and pid.

Against the shop of ``conftest.py``: a real worker exporting to a real monitor on Redis.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import replace

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from tasklens import semconv
from tasklens.brokers.redis import RedisInspector
from tests.brokers.workers import dead_count, make_dead, running_worker
from tests.brokers.workers import wait_until as broker_wait
from tests.browser.conftest import TOKEN, Shop, save_token, screenshot
from tests.browser.harness import MonitorServer, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.redis]

#: Rate units as the pages write them.
RATE = re.compile(r"^[0-9.,]+(/s|/min|/h)$")
#: Dead letters in the bulk queue: more than the 25 rows of one page.
BULK_DEAD = 30


@pytest.fixture
def side_broker(shop: Shop) -> Iterator[RedisBroker]:
    """A plain Dramatiq broker in the shop's namespace, for queues the shop's worker does not serve."""
    broker = RedisBroker(url=shop.worker.redis_url, namespace=shop.worker.namespace)
    yield broker
    broker.close()


def unit_of(text: str) -> str:
    match = RATE.match(text.strip())
    assert match, f"{text!r} is not a rate"
    return match.group(1)


def test_rates_read_in_one_unit_over_a_stated_recent_interval(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(shop.monitor.url + "/")
    save_token(page)
    card = page.locator('[data-stat="Throughput"]')
    expect(card.locator(".stat-hint")).to_have_text(re.compile(r"^over the last \d"))
    expect(page.locator("#chart-throughput svg text.axis").first).to_be_attached()
    # The card speaks the unit of its chart's axis.
    axis = [
        text for text in page.locator("#chart-throughput svg text.axis").all_text_contents() if "/" in text
    ]
    assert axis and {unit_of(text) for text in axis} == {unit_of(card.locator(".stat-value").inner_text())}
    # The worst actors' rate column has one unit, named in its header.
    rates = page.locator("#worst-actors tbody tr td:nth-child(8)").all_inner_texts()
    header = page.locator("#worst-actors thead th:nth-child(8)").inner_text()
    assert len(rates) >= 2 and {unit_of(text) for text in rates} == {
        re.search(r"\((/\w+)\)", header).group(1)
    }

    page.goto(shop.monitor.url + "/actors")
    expect(page.locator("#actors-table tbody tr[data-actor]").first).to_be_visible()
    column = [th.strip() for th in page.locator("#actors-table thead th").all_inner_texts()]
    index = next(i for i, label in enumerate(column) if label.startswith("Rate")) + 1
    units = {unit_of(t) for t in page.locator(f"#actors-table tbody td:nth-child({index})").all_inner_texts()}
    assert len(units) == 1
    expect(page.locator("#actors-interval")).to_contain_text("Rates over the last")


def test_the_bucket_still_filling_is_drawn_as_partial_and_the_store_age_bounds_the_charts(
    shop: Shop, page
) -> None:
    from playwright.sync_api import expect

    overview = shop.monitor.get("/api/overview", window="1h")
    last = overview["series"][-1]
    assert last["partial"] is True
    assert last["throughput"] == pytest.approx(last["runs"] / last["elapsed"])
    # The store is minutes old: the hour's series starts with its data, not with zeros.
    assert overview["series"][0]["t"] >= time.time() - 15 * 60

    page.goto(shop.monitor.url + "/")
    save_token(page)
    expect(page.locator("#chart-throughput svg path.partial").first).to_be_attached()
    expect(page.locator("#chart-throughput svg circle.partial").first).to_be_attached()
    expect(page.locator("#data-since")).to_contain_text("the first run stored in this window")


def test_retried_dead_lettered_and_recovered_runs_are_told_apart(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(shop.monitor.url + "/runs")
    save_token(page)
    status = page.get_by_label("Status")
    rows = page.locator("#runs-table tbody tr[data-trace-id]")

    status.select_option("dead_lettered")
    expect(rows.first).to_be_visible()
    expect(rows).to_have_count(2)  # the declined payment's last attempt and the catalog import
    for state in rows.evaluate_all("rows => rows.map(row => row.dataset.state)"):
        assert state == "dead_lettered"
    expect(rows.first.locator(".badge")).to_have_text("dead-lettered")

    status.select_option("succeeded_after_retry")
    expect(rows.filter(has_text="reserve_stock")).to_have_count(2)
    expect(rows.first.locator(".badge")).to_have_text("succeeded after retry")

    status.select_option("retried")
    expect(rows.filter(has_text="charge_payment")).to_have_count(1)
    expect(rows.filter(has_text="reserve_stock")).to_have_count(2)
    expect(page).to_have_url(re.compile(r"status=retried"))
    screenshot(page, "runs-retried")

    # A trace with a failed attempt and a successful retry is headed by how it ended.
    rows.filter(has_text="reserve_stock").first.locator("a.run-link").click()
    expect(page.locator('[data-stat="outcome"] .stat-value')).to_have_text("succeeded after retry")
    expect(page.locator('[data-stat="attempts"] .stat-value')).to_have_text("2 (1 failed)")
    screenshot(page, "trace-recovered")

    page.goto(shop.monitor.url + "/")
    failing = page.locator('[data-stat="Failing now"]')
    expect(failing.locator(".stat-hint")).to_contain_text("retried")
    expect(failing.locator(".stat-hint")).to_contain_text("dead-lettered")
    # Failed now, retried, dead-lettered, succeeded after retry: a flaky actor that recovers is
    # not one that loses messages.
    cells = page.locator('#worst-actors tr[data-actor="reserve_stock"] td')
    assert [cells.nth(i).inner_text() for i in (2, 3, 4, 5)] == ["0", "2", "0", "2"]
    payments = page.locator('#worst-actors tr[data-actor="charge_payment"] td')
    assert [payments.nth(i).inner_text() for i in (2, 3, 4, 5)] == ["1", "1", "1", "0"]


def test_the_waterfall_names_each_rows_actor_and_attempt(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{shop.monitor.url}/runs?q=declined for order {shop.declined_order}")
    save_token(page)
    page.locator("#runs-table a.run-link").first.click()
    waterfall = page.locator("#waterfall")
    payments = shop.worker.queues["payments"]
    attempts = waterfall.locator(".wf-row", has_text=f"process {payments}")
    expect(attempts).to_have_count(2)
    expect(attempts.first.locator(".wf-actor")).to_have_text("charge_payment")
    expect(attempts.first.locator(".wf-attempt")).to_have_text("attempt 1")
    expect(attempts.first.locator(".badge")).to_have_text("retried")
    expect(attempts.last.locator(".wf-attempt")).to_have_text("attempt 2")
    expect(attempts.last.locator(".badge")).to_have_text("dead-lettered")
    expect(waterfall.locator(".wf-row", has_text=f"send {payments}").first.locator(".wf-actor")).to_have_text(
        "charge_payment"
    )
    expect(page.locator('[data-stat="outcome"] .stat-value')).to_have_text("dead-lettered")
    screenshot(page, "trace-attempts")


def test_a_backlog_shows_its_oldest_age_and_since_when(shop: Shop, side_broker: RedisBroker, page) -> None:
    from playwright.sync_api import expect

    queue = f"{shop.worker.namespace}-backlog"

    @dramatiq.actor(broker=side_broker, queue_name=queue, actor_name=f"{queue}-render")
    def render(number: int) -> None:
        """Nobody consumes this queue: its messages wait."""

    for number in range(5):
        render.send(number)
    page.goto(shop.monitor.url + "/?window=15m")
    save_token(page)
    row = page.locator(f'#queues-now tr[data-queue="{queue}"]')
    expect(row).to_contain_text(re.compile(r"\d+(\.\d+)? s|\dm \d\ds"))
    expect(page.locator('[data-stat="Oldest waiting"] .stat-hint')).to_contain_text(queue)
    # Two snapshots at least (one every 10 s) draw the age as a line, not a dot.
    expect(page.locator("#chart-oldest-age .legend")).to_contain_text(queue, timeout=40_000)
    expect(page.locator("#chart-oldest-age svg path[stroke]").first).to_be_attached()
    screenshot(page, "overview-backlog")

    page.goto(f"{shop.monitor.url}/queues?window=15m")
    expect(page.locator(f'#depth-history div.age[data-queue="{queue}"] svg path').first).to_be_attached()
    screenshot(page, "queues-history")


def test_the_window_picker_is_offered_on_every_page_with_a_time_range(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    for path in ("/runs", "/workers", "/queues", "/actors", "/"):
        page.goto(shop.monitor.url + path)
        save_token(page)
        expect(page.get_by_label("Time window")).to_be_visible()
    page.goto(shop.monitor.url + "/runs")
    page.get_by_label("Time window").select_option("15m")
    expect(page.locator("#runs-summary")).to_contain_text("from the last 15m")


def test_the_inspected_dead_letter_opens_in_view_and_stays_put(
    shop: Shop, side_broker: RedisBroker, page
) -> None:
    from playwright.sync_api import expect

    queue = f"{shop.worker.namespace}-bulk"
    inspector = RedisInspector(f"{shop.worker.redis_url}?namespace={shop.worker.namespace}")
    try:
        make_dead(side_broker, inspector, queue, BULK_DEAD)
        page.goto(f"{shop.monitor.url}/queues?dlq={queue}")
        save_token(page)
        rows = page.locator("#dlq-list tbody tr[data-message-id]")
        expect(rows).to_have_count(25)
        last = rows.last
        last.scroll_into_view_if_needed()
        chosen = last.get_attribute("data-message-id")
        last.get_by_role("button", name="Inspect").click()
        details = page.locator("#dlq-inspect .inspected")
        expect(details).to_contain_text(chosen)
        expect(details).to_be_in_viewport()
        screenshot(page, "dead-letter-inspected")

        # New dead letters do not move the rows under the one being read.
        first_before = rows.first.get_attribute("data-message-id")
        fail = side_broker.get_actor(f"{queue}-fail")
        for number in range(3):
            fail.send(BULK_DEAD + number)
        with running_worker(side_broker):
            broker_wait(lambda: dead_count(inspector, queue), lambda dead: dead == BULK_DEAD + 3)
        expect(page.locator("#dlq-new")).to_contain_text("3 new dead letters", timeout=20_000)
        assert rows.first.get_attribute("data-message-id") == first_before
        expect(page.locator(f'#dlq-list tr.selected[data-message-id="{chosen}"]')).to_have_count(1)
        page.locator("#dlq-new").get_by_role("button", name="Show them").click()
        expect(page.locator("#dlq-new")).to_be_empty()
        assert rows.first.get_attribute("data-message-id") != first_before
    finally:
        inspector.close()


def test_without_a_token_the_monitor_offers_no_dead_letter_action(shop: Shop, page, tmp_path) -> None:
    from playwright.sync_api import expect

    settings = replace(shop.monitor.settings, auth_token=None, store_path=str(tmp_path / "telemetry.db"))
    monitor = MonitorServer(settings).start()
    try:
        page.goto(f"{monitor.url}/queues?dlq={shop.worker.queues['payments']}")
        expect(page.locator("#dlq-token-hint")).to_contain_text("--auth-token")
        for button in ("#dlq-requeue", "#dlq-delete", "#dlq-requeue-all", "#dlq-purge"):
            expect(page.locator(button)).to_be_disabled()
        screenshot(page, "queues-no-token")
    finally:
        monitor.stop()


def _other_process(monitor: MonitorServer, instance: str, *, kind: SpanKind, age: float, queue: str) -> None:
    """Spans of another process: a producer's send, or a run of a worker that has since stopped."""
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "shop-worker", "service.instance.id": instance, "host.name": "elsewhere"}
        )
    )
    exporter = OTLPSpanExporter(
        endpoint=f"{monitor.url}/v1/traces", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    operation = semconv.OPERATION_SEND if kind == SpanKind.PRODUCER else semconv.OPERATION_PROCESS
    start = int((time.time() - age) * 1e9)
    span = provider.get_tracer("test").start_span(
        semconv.span_name(operation, queue),
        kind=kind,
        start_time=start,
        attributes={
            semconv.MESSAGING_SYSTEM: semconv.MESSAGING_SYSTEM_DRAMATIQ,
            semconv.MESSAGING_OPERATION_TYPE: operation,
            semconv.MESSAGING_DESTINATION_NAME: queue,
            semconv.DRAMATIQ_ACTOR_NAME: "send_welcome_email",
        },
    )
    span.end(end_time=start + 1_000_000)
    provider.shutdown()


def test_workers_are_shown_by_host_and_pid_with_their_queues_work_and_history(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    emails = shop.worker.queues["emails"]
    _other_process(shop.monitor, "a-producer", kind=SpanKind.PRODUCER, age=1, queue=emails)
    _other_process(shop.monitor, "a-stopped-worker", kind=SpanKind.CONSUMER, age=600, queue=emails)
    shop.worker.generate_report.send("monthly")
    wait_until(
        lambda: any(
            len(p["history"]) >= 3 and p["running"]
            for p in shop.monitor.get("/api/processes", window="15m")["items"]
            if p["pid"] == os.getpid()
        ),
        what="the worker's reports to reach the store",
    )

    page.goto(f"{shop.monitor.url}/workers#token={TOKEN}")
    expect(page.locator("#live")).to_have_attribute("data-state", "ok")
    page.locator("#live").click()  # paused: what shows is the first load alone
    worker = page.locator("#processes tbody tr", has_text=f"{socket.gethostname()} · pid {os.getpid()}")
    expect(worker).to_have_count(1)
    # The trends come from the store's history, not from what the page saw since it opened.
    expect(worker.locator("svg.sparkline polyline")).to_have_count(2)
    for name in ("emails", "payments", "imports", "stock", "reports"):
        expect(worker).to_contain_text(shop.worker.queues[name])
    expect(worker.locator("td.running-now")).to_contain_text("generate_report")
    expect(worker).to_have_attribute("data-live", "true")
    # A process that only sent messages and a worker that stopped are not live workers.
    expect(page.locator('#processes tr[data-instance="a-producer"]')).to_have_attribute(
        "data-kind", "producer"
    )
    stopped = page.locator('#processes tr[data-instance="a-stopped-worker"]')
    expect(stopped).to_have_attribute("data-live", "false")
    expect(stopped).to_contain_text("stopped?")
    expect(page.locator('[data-stat="Live workers"] .stat-value')).to_have_text("1")
    screenshot(page, "workers")
    shop.worker.release.set()
