"""Delivering notifications off the monitor's path: one thread and one bounded queue per notifier.

The alert evaluator only puts notifications on queues and never waits. Each notifier's thread
sends them in order; a failed send is logged and retried with exponential backoff (from
``initial_backoff`` up to ``max_backoff``) until it succeeds or ``max_attempts`` is reached. When a
notifier stays down so long that its queue fills, the oldest waiting notification is dropped (and
logged) to make room: the newest state matters most.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tasklens.monitor.alerts.notifiers import Notification, NotificationFailed, Notifier

__all__ = [
    "DEFAULT_INITIAL_BACKOFF",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_BACKOFF",
    "QUEUE_SIZE",
    "DeliveryStatus",
    "Dispatcher",
]

logger = logging.getLogger(__name__)

#: Notifications waiting per notifier before the oldest is dropped.
QUEUE_SIZE = 100
#: Wait before the first retry, in seconds; doubled after each failure.
DEFAULT_INITIAL_BACKOFF = 1.0
#: Longest wait between two attempts, in seconds.
DEFAULT_MAX_BACKOFF = 300.0
#: Attempts per notification before it is given up (about a day with the defaults).
DEFAULT_MAX_ATTEMPTS = 300
#: How long closing waits for the queues to drain, in seconds.
CLOSE_TIMEOUT = 5.0


@dataclass
class DeliveryStatus:
    """How one notifier is doing, for ``/api/alerts``.

    Parameters:
      target(str): The notifier, redacted.
      sent(int): Notifications delivered.
      failures(int): Failed attempts.
      dropped(int): Notifications given up or pushed out of a full queue.
      last_error(str|None): Why the last attempt failed, ``None`` once one succeeded.
      pending(int): Notifications waiting.
    """

    target: str
    sent: int = 0
    failures: int = 0
    dropped: int = 0
    last_error: str | None = None
    pending: int = 0


@dataclass
class _Lane:
    notifier: Notifier
    status: DeliveryStatus
    items: queue.Queue[Notification] = field(default_factory=lambda: queue.Queue(QUEUE_SIZE))
    thread: threading.Thread | None = None


class Dispatcher:
    """Sends notifications to every notifier, each on its own thread.

    Parameters:
      notifiers(list[Notifier]): Where notifications go.
      initial_backoff(float): Wait before the first retry, in seconds.
      max_backoff(float): Longest wait between attempts, in seconds.
      max_attempts(int): Attempts per notification.
      on_delivered(Callable|None): Called with each notification once delivered (for tests and logs).
    """

    def __init__(
        self,
        notifiers: list[Notifier],
        *,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        on_delivered: Callable[[Notifier, Notification], None] | None = None,
    ) -> None:
        self._lanes = [_Lane(n, DeliveryStatus(n.target)) for n in notifiers]
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._max_attempts = max_attempts
        self._on_delivered = on_delivered
        self._stop = threading.Event()

    def start(self) -> None:
        """Start one thread per notifier (again after ``close``)."""
        self._stop = threading.Event()
        for lane in self._lanes:
            lane.thread = threading.Thread(
                target=self._run, args=(lane, self._stop), name="tasklens-alert-notifier", daemon=True
            )
            lane.thread.start()

    def submit(self, notification: Notification) -> None:
        """Queue a notification for every notifier; never blocks."""
        for lane in self._lanes:
            while True:
                try:
                    lane.items.put_nowait(notification)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        dropped = lane.items.get_nowait()
                        lane.status.dropped += 1
                        logger.error(
                            "Dropped the %s notification of %s for %s: too many waiting.",
                            dropped.event,
                            dropped.alert.key,
                            lane.status.target,
                        )

    def statuses(self) -> list[DeliveryStatus]:
        """Each notifier's counts."""
        for lane in self._lanes:
            lane.status.pending = lane.items.qsize()
        return [lane.status for lane in self._lanes]

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Let the queues drain for up to ``timeout`` seconds, then stop the threads."""
        for lane in self._lanes:
            if lane.thread is not None:
                with contextlib.suppress(queue.Full):
                    lane.items.put(_STOP, timeout=timeout)  # type: ignore[arg-type]
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout)
        self._stop.set()
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(timeout)
                lane.thread = None
            close = getattr(lane.notifier, "close", None)
            if close is not None:
                close()

    def _run(self, lane: _Lane, stop: threading.Event) -> None:
        while not stop.is_set():
            notification = lane.items.get()
            if notification is _STOP:
                return
            self._deliver(lane, notification, stop)

    def _deliver(self, lane: _Lane, notification: Notification, stop: threading.Event) -> None:
        backoff = self._initial_backoff
        for attempt in range(1, self._max_attempts + 1):
            try:
                lane.notifier.send(notification)
            except NotificationFailed as exc:
                error = str(exc)
            except Exception as exc:
                logger.exception("The %s notifier failed unexpectedly.", lane.status.target)
                error = f"{type(exc).__name__}"
            else:
                lane.status.sent += 1
                lane.status.last_error = None
                if attempt > 1:
                    logger.info(
                        "Delivered %s to %s after %d attempts.",
                        notification.title,
                        lane.status.target,
                        attempt,
                    )
                if self._on_delivered is not None:
                    self._on_delivered(lane.notifier, notification)
                return
            lane.status.failures += 1
            lane.status.last_error = error
            logger.warning(
                "Could not deliver %s (attempt %d): %s; retrying in %.0f s.",
                notification.title,
                attempt,
                error,
                backoff,
            )
            if stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._max_backoff)
        lane.status.dropped += 1
        logger.error("Gave up delivering %s to %s.", notification.title, lane.status.target)


#: Tells a notifier's thread to stop once what was queued before it is sent.
_STOP = object()
