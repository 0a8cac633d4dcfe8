"""A failed Celery run in the dashboard: opened from Runs to its waterfall with its exception and
captured arguments, then run again from the page (a real worker on Redis runs it once more)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.celery_fixtures import wait_for
from tests.monitor.celery_fleet import AUTH, TOKEN, Fleet, send
from tests.monitor.celery_fleet import celery_fleet as celery_fleet  # the fixture

pytestmark = pytest.mark.redis


def test_a_failed_celery_run_opens_to_its_waterfall_and_runs_again_from_the_page(
    page: Any, celery_fleet: Fleet
) -> None:
    from playwright.sync_api import expect

    fleet = celery_fleet
    key = f"{fleet.prefix}:browser"
    send(fleet, "flaky", key, 5)
    run = fleet.failed_run("flaky", key)

    page.goto(f"{fleet.monitor}/runs?status=error#token={TOKEN}")
    row = page.locator("tr", has=page.locator(f'a[href*="{run["trace_id"]}"]')).first
    expect(row).to_contain_text("flaky")
    row.locator(f'a[href*="{run["trace_id"]}"]').first.click()

    expect(page).to_have_url(re.compile(run["trace_id"]))
    failed = page.locator(f'#waterfall [data-span-id="{run["span_id"]}"]')
    expect(failed).to_have_attribute("data-status", "error")
    failed.click()
    details = page.locator("#span-details")
    expect(details.locator(".exception-type")).to_contain_text("ValueError")
    expect(details).to_contain_text("celery.task.args")
    expect(details).to_contain_text(key)

    page.locator("#run-again").click()
    result = page.locator("#run-again-result")
    expect(result).to_have_text(re.compile(r"^Sent again as task [0-9a-f-]{36}\.$"))
    expect(page.locator("#run-again")).to_be_disabled()
    task_id = result.inner_text().removeprefix("Sent again as task ").rstrip(".")

    wait_for(lambda: fleet.runs.llen(key) == 2, "the task to run again")
    # The new run joins the failed run's trace: the waterfall shows it as the page polls.
    expect(page.locator("#waterfall [data-span-id]")).not_to_have_count(0)

    def new_run_in_trace() -> bool:
        trace = httpx.get(f"{fleet.monitor}/api/traces/{run['trace_id']}", headers=AUTH).json()
        return any(span["attributes"].get("messaging.message.id") == task_id for span in trace["spans"])

    wait_for(new_run_in_trace, "the new run in the failed run's trace")
    expect(page.locator('#waterfall [data-status="error"]')).not_to_have_count(0)
    expect(page.locator("#waterfall .wf-row:not(.wf-axis)")).to_have_count(
        len(httpx.get(f"{fleet.monitor}/api/traces/{run['trace_id']}", headers=AUTH).json()["spans"])
    )


def test_run_again_without_a_token_says_why_on_the_page(page: Any, celery_fleet: Fleet) -> None:
    from playwright.sync_api import expect

    fleet = celery_fleet
    key = f"{fleet.prefix}:browser-notoken"
    send(fleet, "flaky", key, 6)
    run = fleet.failed_run("flaky", key)
    page.goto(f"{fleet.monitor}/runs/{run['trace_id']}?span={run['span_id']}#token=wrong-token")
    # A wrong token is refused for reads too: the page says so and nothing is sent.
    expect(page.locator("body")).to_contain_text("refused")
    assert fleet.runs.llen(key) == 1
