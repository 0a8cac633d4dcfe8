"""The alerts page in headless Chromium: a monitor with built-in alerts, fed by a real worker on
Redis whose catalog import fails straight to the dead-letter queue."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tasklens.monitor import MonitorSettings
from tasklens.monitor.alerts import build_alert_config
from tests.browser.conftest import screenshot
from tests.browser.harness import MonitorServer, ShopWorker, wait_until
from tests.monitor.alerts.receivers import webhook_receiver

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_the_alerts_page_shows_firing_alerts_and_their_history(page, redis_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    namespace = "t" + uuid.uuid4().hex[:10]
    off = ("backlog", "oldest_message_age", "retry_storm", "no_live_workers", "broker_unreachable")
    with webhook_receiver() as webhook:
        config = build_alert_config(
            rules=[
                *[(name, {"enabled": "false"}) for name in off],
                ("error_rate", {"for": "0s", "window": "5m"}),
                # A short window: without new dead letters the alert resolves within seconds.
                ("dead_letters_growing", {"for": "0s", "window": "3s"}),
            ],
            webhooks=[],
            interval="0.2s",
            state_path=str(tmp_path / "alerts.json"),
        )
        settings = MonitorSettings(
            broker_url=f"{redis_url}?namespace={namespace}", cache_ttl=0.2, alerts=config
        )
        monitor = MonitorServer(settings).start()
        worker = ShopWorker(redis_url, namespace, monitor.url).start()
        try:
            imports = worker.queues["imports"]
            worker.send_welcome_email.send(1)
            worker.import_catalog.send("s3://catalogs/spring.csv")
            wait_until(
                lambda: (
                    {a["key"] for a in monitor.get("/api/alerts")["firing"]}
                    >= {f"error_rate:{imports}", f"dead_letters_growing:{imports}"}
                ),
                what="the error-rate and dead-letter alerts to fire",
            )
            page.goto(f"{monitor.url}/alerts")
            firing = page.locator("#alerts-firing")
            expect(firing.locator(f'tr[data-key="error_rate:{imports}"]')).to_contain_text("100%")
            expect(firing.locator(f'tr[data-key="error_rate:{imports}"]')).to_contain_text("warning")
            expect(page.locator('[aria-current="page"]')).to_have_text("Alerts")
            screenshot(page, "alerts-firing")

            # No new dead letter for the window: that alert resolves and moves to the history.
            history = page.locator("#alerts-history")
            expect(history.locator(f'tr[data-key="dead_letters_growing:{imports}"]')).to_be_visible()
            expect(firing.locator(f'tr[data-key="dead_letters_growing:{imports}"]')).to_have_count(0)
            expect(firing.locator(f'tr[data-key="error_rate:{imports}"]')).to_be_visible()
            expect(page.locator("#alert-rules")).to_contain_text("dead_letters_growing")
            screenshot(page, "alerts-history")
        finally:
            worker.stop()
            monitor.stop()
        assert webhook.bodies == []


def test_without_alerts_the_page_says_how_to_turn_them_on(page, redis_url: str) -> None:
    from playwright.sync_api import expect

    monitor = MonitorServer(
        MonitorSettings(broker_url=f"{redis_url}?namespace=t{uuid.uuid4().hex[:10]}")
    ).start()
    try:
        page.goto(f"{monitor.url}/alerts")
        expect(page.locator("#page")).to_contain_text("evaluates no alerts")
        expect(page.locator("#alerts-firing")).to_contain_text("No alerts are evaluated.")
    finally:
        monitor.stop()
