"""Where alert notifications go: a webhook (generic JSON or Slack-compatible) or email over SMTP.

A notifier sends one ``Notification`` per call and raises ``NotificationFailed`` when it could
not; ``tasklens.monitor.alerts.dispatch`` runs each notifier on a thread of its own and retries
with backoff, so a slow or failing one never holds up the monitor or the other notifiers.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Literal

from tasklens.monitor.alerts.state import AlertRecord

__all__ = ["Event", "Notification", "NotificationFailed", "Notifier"]

Event = Literal["firing", "reminder", "resolved"]


class NotificationFailed(Exception):
    """A notification could not be delivered; the message says why, without credentials."""


@dataclass(frozen=True)
class Notification:
    """What happened to an alert, to tell people.

    Parameters:
      event(Event): firing (it just fired), reminder (it still fires) or resolved.
      alert(AlertRecord): The alert as it was at that moment.
      broker(str): The redacted URL of the broker the monitor watches.
      created_at(float): When the notification was made, Unix seconds.
    """

    event: Event
    alert: AlertRecord
    broker: str
    created_at: float

    @classmethod
    def of(cls, event: Event, alert: AlertRecord, broker: str) -> Notification:
        return cls(event, AlertRecord(**vars(alert)), broker, time.time())

    @property
    def title(self) -> str:
        """``[FIRING] backlog on queue 'emails'``."""
        where = f"queue {self.alert.queue!r}" if self.alert.queue else "the broker"
        return f"[{self.event.upper()}] {self.alert.rule} on {where}"

    @property
    def text(self) -> str:
        """The title, the summary and where it was seen, for people."""
        lines = [self.title, self.alert.summary, f"severity: {self.alert.severity}, broker: {self.broker}"]
        if self.event == "resolved" and self.alert.resolved_at is not None:
            lines.append(f"fired for {self.alert.resolved_at - self.alert.started_at:.0f} s")
        return "\n".join(lines)


class Notifier(abc.ABC):
    """Sends notifications to one destination."""

    @property
    @abc.abstractmethod
    def target(self) -> str:
        """Where it sends, without credentials or secret URL parts."""

    @abc.abstractmethod
    def send(self, notification: Notification) -> None:
        """Deliver one notification.

        Raises:
          NotificationFailed: When it was not delivered.
        """
