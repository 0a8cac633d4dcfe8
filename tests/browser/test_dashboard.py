"""The dashboard in headless Chromium, against a monitor fed by a real instrumented worker (the
shop of ``conftest.py``): what each page shows and does."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tests.browser.conftest import TOKEN, Shop, save_token, screenshot
from tests.browser.harness import MonitorServer

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_overview_shows_throughput_errors_and_worst_actors(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(shop.monitor.url + "/")
    save_token(page)
    expect(page.locator("#live")).to_have_attribute("data-state", "ok")
    runs = page.locator('[data-stat="Runs"] .stat-value')
    expect(runs).not_to_have_text(re.compile(r"^(0|—)$"))
    expect(page.locator('[data-stat="Error rate"] .stat-value')).to_have_text(re.compile(r"%$"))
    expect(page.locator("#chart-throughput svg path").first).to_be_attached()
    worst = page.locator("#worst-actors")
    expect(worst).to_contain_text("charge_payment")
    expect(worst).to_contain_text("import_catalog")
    page.get_by_label("Time window").select_option("15m")
    expect(page.locator('[data-stat="Runs"] .stat-hint')).to_have_text("in the last 15m")
    expect(page).to_have_url(re.compile(r"window=15m"))

    page.goto(shop.monitor.url + "/actors")
    row = page.locator('#actors-table tr[data-actor="charge_payment"]')
    expect(row).to_contain_text(shop.worker.queues["payments"])
    screenshot(page, "actors")
    row.get_by_role("link", name="charge_payment").click()
    expect(page).to_have_url(re.compile(r"/actors/charge_payment"))
    expect(page.locator("#recent-runs tbody tr[data-status='error']").first).to_be_visible()
    screenshot(page, "actor")


def test_searching_a_failed_run_opens_its_waterfall_with_the_exception(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(shop.monitor.url + "/runs")
    save_token(page)
    page.get_by_label("Search runs").fill(f"declined for order {shop.declined_order}")
    page.get_by_label("Search runs").press("Enter")
    failed = page.locator("#runs-table tbody tr[data-status='error']")
    expect(failed).to_have_count(2)  # the first attempt and its retry
    expect(page.locator("#runs-table tbody tr[data-status='ok']")).to_have_count(0)
    screenshot(page, "runs")

    failed.first.locator("a.run-link").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f]{32}"))
    waterfall = page.locator("#waterfall")
    expect(waterfall).to_contain_text("POST /checkout")
    payments = shop.worker.queues["payments"]
    # The checkout's send, the first attempt, the retry's send and the second attempt.
    expect(waterfall.locator(".wf-row", has_text=f"send {payments}")).to_have_count(2)
    expect(waterfall.locator(".wf-row", has_text=f"process {payments}")).to_have_count(2)
    expect(waterfall).to_contain_text("call payment provider")
    exception = page.locator("#span-details .exception")
    expect(exception).to_contain_text("CardDeclined")
    expect(exception).to_contain_text(f"card declined for order {shop.declined_order}")
    expect(exception.locator("pre.traceback")).to_contain_text("raise CardDeclined")
    expect(page.locator("#trace-logs")).to_contain_text(f"charging order {shop.declined_order}")
    screenshot(page, "trace")


def test_a_pipeline_trace_nests_each_step_under_the_one_that_sent_it(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(f"{shop.monitor.url}/runs?actor=store_feed")
    save_token(page)
    page.locator("#runs-table a.run-link").first.click()
    waterfall = page.locator("#waterfall")
    imports = shop.worker.queues["imports"]
    rows = {
        "request": waterfall.locator(".wf-row", has_text="POST /feeds"),
        "fetch": waterfall.locator(".wf-row", has_text=f"process {imports}").first,
        "download": waterfall.locator(".wf-row", has_text="download"),
        "store": waterfall.locator(".wf-row", has_text=f"process {imports}").last,
    }
    expect(rows["request"]).to_have_attribute("aria-level", "1")
    # request > send > fetch > download, and fetch > send > store.
    expect(rows["fetch"]).to_have_attribute("aria-level", "3")
    expect(rows["download"]).to_have_attribute("aria-level", "4")
    expect(rows["store"]).to_have_attribute("aria-level", "5")
    expect(page.locator("#trace-logs")).to_contain_text("storing")
    screenshot(page, "trace-pipeline")

    # A step folds away with everything it started, and opens again.
    rows["fetch"].get_by_role("button", name="Hide nested spans").click()
    expect(waterfall.locator(".wf-row", has_text="download")).to_have_count(0)
    expect(waterfall.locator(".wf-row", has_text=f"process {imports}")).to_have_count(1)
    rows["fetch"].get_by_role("button", name="Show 3 nested spans").click()
    expect(waterfall.locator(".wf-row", has_text=f"process {imports}")).to_have_count(2)


def test_dead_letter_is_refused_without_the_token_then_requeued_with_it(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    queue = shop.worker.queues["imports"]
    page.goto(f"{shop.monitor.url}/queues?dlq={queue}")
    save_token(page)
    row = page.locator(f'#dlq-list tr[data-message-id="{shop.dead_message_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("import_catalog")
    row.get_by_role("button", name="Inspect").click()
    inspected = page.locator("#dlq-inspect")
    expect(inspected).to_contain_text("s3://catalogs/spring.csv")
    expect(inspected.locator("tr[data-status='error']")).to_contain_text("ValueError")
    screenshot(page, "queues")

    # Without the token: the action is refused, the API's reason is shown, the letter stays.
    save_token(page, "")
    row.get_by_role("checkbox").check()
    page.locator("#dlq-requeue").click()
    outcome = page.locator("#dlq-outcome")
    expect(outcome).to_contain_text("Requeue refused")
    expect(outcome).to_contain_text("401")
    expect(outcome).to_contain_text("bearer token")
    expect(page.locator("#app-notice")).to_contain_text("Enter its API token")
    assert shop.monitor.get(f"/api/queues/{queue}")["dead"] == 1
    screenshot(page, "queues-refused")

    # With the token, once the bug is fixed: requeued, and the worker processes it.
    shop.worker.fixed.set()
    save_token(page)
    row.get_by_role("checkbox").check()
    page.locator("#dlq-requeue").click()
    expect(outcome).to_contain_text("Requeued 1 message")
    expect(page.locator("#dlq-list")).to_contain_text(f"No dead letters in {queue}.")
    page.goto(f"{shop.monitor.url}/runs?q={shop.dead_message_id}")
    recovered = page.locator("#runs-table tbody tr[data-status='ok']")
    expect(recovered).to_have_count(1)
    # Its attempt number is the one it died with: the run says it came after a requeue.
    expect(recovered.locator(".requeued")).to_have_text("requeued")
    expect(page.locator("#runs-table tbody tr[data-status='error'] .requeued")).to_have_count(0)


def test_workers_page_lists_the_worker_processes(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    # A link may carry the token in its fragment, as `tasklens demo` prints it.
    page.goto(f"{shop.monitor.url}/workers#token={TOKEN}")
    expect(page.locator("#token-form")).to_have_attribute("data-state", "set")
    expect(page).to_have_url(f"{shop.monitor.url}/workers")
    expect(page.locator('[data-stat="Live workers"] .stat-value')).to_have_text(re.compile(r"^[1-9]"))
    process = page.locator("#processes tbody tr", has_text="shop-worker").first
    expect(process).to_contain_text(re.compile(r"\d+(\.\d+)? MiB"))
    # A later reading draws the process's CPU and memory trends.
    expect(process.locator("svg.sparkline polyline")).to_have_count(2)
    screenshot(page, "workers")


def test_runs_page_shows_new_runs_without_a_reload(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(shop.monitor.url + "/runs")
    save_token(page)
    expect(page.locator("#runs-table tbody tr[data-trace-id]").first).to_be_visible()
    message = shop.worker.send_welcome_email.send(4242)
    fresh = page.locator("#runs-table tbody tr", has_text=message.message_id[:13])
    expect(fresh).to_be_visible()
    expect(fresh).to_contain_text("send_welcome_email")

    # What the task logged is shown as text, markup and all, never interpreted.
    fresh.locator("a.run-link").click()
    logs = page.locator("#trace-logs")
    expect(logs).to_contain_text("rendering <b>welcome</b> for user 4242")
    expect(logs.locator("b")).to_have_count(0)


def test_overview_charts_queue_depth_from_the_broker_snapshots(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    page.goto(shop.monitor.url + "/")
    save_token(page)
    # The monitor stores a broker snapshot every few seconds; the chart draws them by queue and state.
    legend = page.locator("#chart-depth .legend, #chart-depth svg")
    expect(legend.first).to_be_visible(timeout=30_000)
    expect(page.locator('[data-stat="Dead letters"] .stat-value')).to_have_text("1")
    screenshot(page, "overview")


def test_purging_a_dead_letter_queue_asks_for_confirmation_first(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    queue = shop.worker.queues["payments"]
    page.goto(f"{shop.monitor.url}/queues?dlq={queue}")
    save_token(page)
    expect(page.locator("#dlq-list tbody tr[data-message-id]")).to_have_count(1)
    page.get_by_role("checkbox", name="Select all on this page").check()
    expect(page.locator("#dlq-delete")).to_have_text("Delete 1 selected")
    purge = page.locator("#dlq-purge")
    purge.click()
    expect(purge).to_have_text("Confirm: purge 1")
    assert shop.monitor.get(f"/api/queues/{queue}")["dead"] == 1
    purge.click()
    expect(page.locator("#dlq-outcome")).to_contain_text(f"Purged 1 dead letter from {queue}.")
    expect(page.locator("#dlq-list")).to_contain_text(f"No dead letters in {queue}.")


def test_a_monitor_without_a_store_says_so_and_still_shows_the_broker(shop: Shop, page) -> None:
    from playwright.sync_api import expect

    monitor = MonitorServer(replace(shop.monitor.settings, store_path=None)).start()
    try:
        page.goto(monitor.url + "/")
        save_token(page)
        expect(page.locator("#page .banner")).to_contain_text("--no-store")
        expect(page.locator('[data-stat="Live workers"] .stat-value')).to_have_text(re.compile(r"^[1-9]"))
        page.goto(monitor.url + "/runs")
        expect(page.locator("#app-notice")).to_contain_text("--no-store")
    finally:
        monitor.stop()
