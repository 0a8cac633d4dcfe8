"""``tasklens monitor`` with built-in alerts, end to end: a real monitor process reading the real
Redis, notifying a webhook receiver and an SMTP server started by the test."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.monitor.alerts.conftest import Backlog, write_alerts_file
from tests.monitor.alerts.receivers import SmtpReceiver, WebhookReceiver
from tests.monitor.processes import free_port, running_monitor

pytestmark = [pytest.mark.redis, pytest.mark.slow]

#: Evaluate often, so that tests wait little.
FAST = {"interval": "0.2s"}
#: How long a test polls the monitor's API, in seconds.
API_DEADLINE = 30.0


def alerts(base_url: str) -> dict:
    response = httpx.get(f"{base_url}/api/alerts", timeout=5.0)
    response.raise_for_status()
    return response.json()


def wait_api(base_url: str, condition, what: str) -> dict:
    deadline = time.monotonic() + API_DEADLINE
    while True:
        body = alerts(base_url)
        if condition(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {body}")
        time.sleep(0.1)


def evaluations_after(base_url: str, moment: float, count: int = 3) -> dict:
    """Wait until the monitor has evaluated its rules ``count`` intervals after ``moment``."""
    return wait_api(
        base_url,
        lambda body: (body["evaluated_at"] or 0) > moment + count * 0.2,
        f"{count} evaluations after {moment}",
    )


def test_fire_remind_restart_resolve(tmp_path: Path, backlog: Backlog, webhook: WebhookReceiver) -> None:
    config = write_alerts_file(
        tmp_path / "alerts.toml",
        {"backlog": {"threshold": 2, "for": "0s"}},
        webhooks=[{"url": webhook.url}],
        reminder="2s",
        state=str(tmp_path / "state" / "alerts.json"),
        **FAST,
    )
    key = f"backlog:{backlog.queue}"
    backlog.add(3)
    args = ("--broker", backlog.broker_url, "--alerts", str(config))
    with running_monitor(*args) as base_url:
        fired = webhook.wait_for(lambda bodies: [b for b in bodies if b["event"] == "firing"], "the firing")
        assert fired[0]["alert"]["key"] == key
        assert fired[0]["alert"]["severity"] == "warning"
        assert fired[0]["alert"]["value"] == 3
        assert "3 ready messages" in fired[0]["alert"]["summary"]
        webhook.wait_for(lambda bodies: [b for b in bodies if b["event"] == "reminder"], "a reminder")
        body = alerts(base_url)
        assert [a["key"] for a in body["firing"]] == [key]
        assert body["firing"][0]["reminders"] >= 1

    # A restarted monitor finds the alert firing already: no second "firing".
    restarted = time.time()
    with running_monitor(*args) as base_url:
        body = evaluations_after(base_url, restarted)
        assert [a["key"] for a in body["firing"]] == [key]
        assert webhook.events(key).count("firing") == 1

        backlog.drain()
        webhook.wait_for(lambda bodies: [b for b in bodies if b["event"] == "resolved"], "the resolution")
        resolved_at = time.time()
        body = evaluations_after(base_url, resolved_at)
        assert body["firing"] == []
        assert [a["key"] for a in body["history"]] == [key]
        assert body["history"][0]["resolved_at"] is not None
    events = webhook.events(key)
    assert events.count("firing") == 1
    assert events.count("resolved") == 1
    assert events[-1] == "resolved"


def test_a_failing_webhook_is_retried_and_never_stalls_the_monitor(
    tmp_path: Path, backlog: Backlog, webhook: WebhookReceiver
) -> None:
    webhook.fail_next(2)
    config = write_alerts_file(
        tmp_path / "alerts.toml",
        {"backlog": {"threshold": 0, "for": "0s"}},
        webhooks=[{"url": webhook.url}],
        state=str(tmp_path / "alerts.json"),
        **FAST,
    )
    backlog.add(1)
    with running_monitor("--broker", backlog.broker_url, "--alerts", str(config)) as base_url:
        deadline = time.monotonic() + API_DEADLINE
        while webhook.failed == 0:
            assert time.monotonic() < deadline, "the webhook was never called"
            time.sleep(0.05)
        # While the notifier backs off, the monitor answers as usual.
        assert httpx.get(f"{base_url}/api/queues", timeout=5.0).status_code == 200
        body = wait_api(base_url, lambda b: b["notifiers"][0]["failures"] >= 1, "the failure to be counted")
        assert [a["key"] for a in body["firing"]] == [f"backlog:{backlog.queue}"]
        notifier = body["notifiers"][0]
        assert "answered 500" in notifier["last_error"]
        assert "secret-part" not in notifier["target"]

        delivered = webhook.wait_for(lambda bodies: bodies, "the delivery after the failures")
        assert [b["event"] for b in delivered] == ["firing"]
        assert webhook.failed == 2
        body = wait_api(base_url, lambda b: b["notifiers"][0]["sent"] == 1, "the notifier's success")
        assert body["notifiers"][0]["failures"] == 2
        assert body["notifiers"][0]["last_error"] is None


def test_slack_and_email_notifications(
    tmp_path: Path, backlog: Backlog, webhook: WebhookReceiver, smtp: SmtpReceiver
) -> None:
    config = write_alerts_file(
        tmp_path / "alerts.toml",
        {"backlog": {"threshold": 1, "for": "0s"}, "no_live_workers": {"for": "0s"}},
        webhooks=[{"url": webhook.url, "format": "slack"}],
        email={
            "smtp": f"smtp://127.0.0.1:{smtp.port}",
            "from": "tasklens@example.com",
            "to": ["oncall@example.com"],
        },
        reminder="0",
        state=str(tmp_path / "alerts.json"),
        **FAST,
    )
    backlog.add(2)
    backlog.forget_producer()
    with running_monitor("--broker", backlog.broker_url, "--alerts", str(config)):
        texts = webhook.wait_for(lambda bodies: len(bodies) >= 2 and bodies, "two Slack messages")
        assert all(set(body) == {"text"} for body in texts)
        joined = "\n".join(body["text"] for body in texts)
        assert f"[FIRING] backlog on queue '{backlog.queue}'" in joined
        assert f"[FIRING] no_live_workers on queue '{backlog.queue}'" in joined
        mails = smtp.wait_for(lambda messages: len(messages) >= 2 and messages, "two emails")
        subjects = sorted(m["Subject"] for m in mails)
        assert subjects == [
            f"[tasklens] [FIRING] backlog on queue '{backlog.queue}'",
            f"[tasklens] [FIRING] no_live_workers on queue '{backlog.queue}'",
        ]
        assert all(m["To"] == "oncall@example.com" and m["From"] == "tasklens@example.com" for m in mails)
        assert (
            "severity: critical" in next(m for m in mails if "no_live_workers" in m["Subject"]).get_payload()
        )

        backlog.drain()
        resolved = smtp.wait_for(
            lambda messages: (
                [m for m in messages if "[RESOLVED]" in m["Subject"]] if len(messages) >= 4 else None
            ),
            "two resolution emails",
        )
        assert len(resolved) == 2
        webhook.wait_for(
            lambda bodies: sum("[RESOLVED]" in b["text"] for b in bodies) == 2, "two Slack resolutions"
        )


def test_broker_unreachable_fires(tmp_path: Path, webhook: WebhookReceiver) -> None:
    config = write_alerts_file(
        tmp_path / "alerts.toml",
        {"broker_unreachable": {"for": "0s"}},
        webhooks=[{"url": webhook.url}],
        state=str(tmp_path / "alerts.json"),
        **FAST,
    )
    broker = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with running_monitor("--broker", broker, "--timeout", "1", "--alerts", str(config)):
        body = webhook.wait_for(lambda bodies: bodies, "the firing")[0]
    assert body["event"] == "firing"
    assert body["alert"]["key"] == "broker_unreachable:"
    assert body["alert"]["severity"] == "critical"
    assert "hunter2" not in str(body)
