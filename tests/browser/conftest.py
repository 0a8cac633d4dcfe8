"""Headless Chromium for the dashboard tests, where their screenshots go, and the shop they read.

One monitor and one worker serve each test module: the worker runs a small shop's traffic (welcome
emails; checkouts whose payment task is declined once, retried, and dead-lettered; stock
reservations that fail once and succeed when retried; a two-step feed import pipeline; a catalog
import that fails straight to the dead-letter queue), exports it over OTLP/HTTP to the monitor,
and the tests read it back through the pages as a user would.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasklens.monitor import MonitorSettings
from tests.browser.harness import MonitorServer, ShopWorker, wait_until

#: Debian's Chromium; Playwright drives it instead of downloading a browser of its own.
CHROMIUM = os.environ.get("TASKLENS_CHROMIUM", "/usr/bin/chromium")
#: Flags for a headless run as root in a container, with nothing reaching the network.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the tests save a screenshot of each page, relative to the repository root.
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
#: A laptop screen.
VIEWPORT = {"width": 1366, "height": 800}
#: How long an expectation may wait, in milliseconds: pages poll every 5 s, so two polls and more.
EXPECT_TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        message = f"Chromium not found at {CHROMIUM} (run `make system-deps`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI=true: a missing browser is a failure", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: object) -> Iterator[object]:
    """A fresh browser profile (empty local storage) with one page; fails the test on a JS error."""
    from playwright.sync_api import Browser, expect

    assert isinstance(chromium, Browser)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page raised JavaScript errors: {errors}"


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot as ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


#: The monitor's API token in these tests.
TOKEN = "browser-test-token"
#: The order whose card is declined.
DECLINED_ORDER = 42


@dataclass
class Shop:
    monitor: MonitorServer
    worker: ShopWorker
    declined_order: int
    dead_message_id: str


@pytest.fixture(scope="module")
def shop(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = MonitorSettings(
        broker_url=f"{redis_url}?namespace={namespace}",
        auth_token=TOKEN,
        cache_ttl=0.5,
        store_path=str(tmp_path_factory.mktemp("store") / "telemetry.db"),
    )
    monitor = MonitorServer(settings).start()
    worker = ShopWorker(
        redis_url, namespace, monitor.url, headers={"Authorization": f"Bearer {TOKEN}"}
    ).start()
    try:
        for user_id in range(12):
            worker.send_welcome_email.send(user_id)
        for order_id in range(100, 108):
            worker.checkout(order_id, 25)
        worker.import_feed("https://example.test/feed.xml")
        worker.checkout(DECLINED_ORDER, -1)
        for order_id in (7, 8):
            worker.reserve_stock.send(order_id)
        dead = worker.import_catalog.send("s3://catalogs/spring.csv")
        wait_until(
            lambda: (
                monitor.get(f"/api/queues/{worker.queues['imports']}")["dead"] == 1
                and monitor.get(f"/api/queues/{worker.queues['payments']}")["dead"] == 1
            ),
            what="the failing messages to reach the dead-letter queues",
        )
        worker.flush()
        wait_until(
            lambda: (
                len(monitor.get("/api/runs", status="error", limit=10)["items"]) >= 5
                and len(monitor.get("/api/runs", status="succeeded_after_retry")["items"]) >= 2
            ),
            what="the failed and retried runs to reach the monitor's store",
        )
        yield Shop(monitor, worker, declined_order=DECLINED_ORDER, dead_message_id=dead.message_id)
    finally:
        worker.stop()
        monitor.stop()


def save_token(page, token: str = TOKEN) -> None:
    """Type the token into the top bar's field, as a user does once per browser."""
    from playwright.sync_api import expect

    page.locator("#token").fill(token)
    page.locator("#token-save").click()
    expect(page.locator("#token-form")).to_have_attribute("data-state", "set" if token else "unset")
