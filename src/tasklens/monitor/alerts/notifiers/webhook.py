"""Alert notifications POSTed to a webhook: tasklens's JSON body, or Slack's ``{"text": ...}``."""

from __future__ import annotations

from typing import Any

import httpx

from tasklens.monitor.alerts.config import WebhookTarget
from tasklens.monitor.alerts.notifiers import Notification, NotificationFailed, Notifier

__all__ = ["DEFAULT_TIMEOUT", "WebhookNotifier", "json_payload", "slack_payload"]

#: Longest one POST may take, in seconds.
DEFAULT_TIMEOUT = 10.0
#: Emoji Slack shows before each kind of notification.
SLACK_ICONS = {"firing": ":rotating_light:", "reminder": ":bell:", "resolved": ":white_check_mark:"}


def json_payload(notification: Notification) -> dict[str, Any]:
    """The generic body: the event, the alert's fields and the broker.

    Parameters:
      notification(Notification): What to send.
    """
    alert = notification.alert
    return {
        "event": notification.event,
        "title": notification.title,
        "broker": notification.broker,
        "sent_at": notification.created_at,
        "alert": {
            "key": alert.key,
            "rule": alert.rule,
            "queue": alert.queue,
            "severity": alert.severity,
            "summary": alert.summary,
            "value": alert.value,
            "started_at": alert.started_at,
            "resolved_at": alert.resolved_at,
        },
    }


def slack_payload(notification: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook body (also accepted by Mattermost and Rocket.Chat).

    Parameters:
      notification(Notification): What to send.
    """
    icon = SLACK_ICONS[notification.event]
    title, *rest = notification.text.splitlines()
    return {"text": "\n".join([f"{icon} *{title}*", *rest])}


class WebhookNotifier(Notifier):
    """POSTs each notification to ``target.url``; any answer but 2xx is a failure.

    Parameters:
      target(WebhookTarget): The URL and the body format.
      timeout(float): Longest one POST may take, in seconds.

    Example:

      >>> WebhookNotifier(WebhookTarget("https://hooks.slack.com/services/T/B/X", "slack"))
    """

    def __init__(self, target: WebhookTarget, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._target = target
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    @property
    def target(self) -> str:
        return f"webhook {self._target.redacted} ({self._target.format})"

    def send(self, notification: Notification) -> None:
        body = slack_payload(notification) if self._target.format == "slack" else json_payload(notification)
        try:
            response = self._client.post(self._target.url, json=body)
        except httpx.HTTPError as exc:
            raise NotificationFailed(f"{self.target}: {type(exc).__name__}") from None
        if not response.is_success:
            raise NotificationFailed(f"{self.target} answered {response.status_code}")

    def close(self) -> None:
        self._client.close()
