"""Delivery off the monitor's path: submitting never blocks, a stuck notifier keeps a bounded
queue (oldest dropped), and the other notifiers are not held up."""

from __future__ import annotations

import threading
import time

from tasklens.monitor.alerts.dispatch import QUEUE_SIZE, Dispatcher
from tasklens.monitor.alerts.notifiers import Notification, Notifier
from tasklens.monitor.alerts.state import AlertRecord


class Stuck(Notifier):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[Notification] = []

    @property
    def target(self) -> str:
        return "stuck"

    def send(self, notification: Notification) -> None:
        self.release.wait()
        self.sent.append(notification)


class Quick(Notifier):
    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.done = threading.Event()

    @property
    def target(self) -> str:
        return "quick"

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)
        if notification.alert.key == f"backlog:q{QUEUE_SIZE + 9}":
            self.done.set()


def notification(n: int) -> Notification:
    record = AlertRecord(f"backlog:q{n}", "backlog", f"q{n}", "warning", "s", 1.0, 0.0, 0.0)
    return Notification.of("firing", record, "redis://x")


def test_a_stuck_notifier_holds_up_nothing_and_keeps_a_bounded_queue() -> None:
    stuck, quick = Stuck(), Quick()
    dispatcher = Dispatcher([stuck, quick])
    dispatcher.start()
    try:
        for n in range(QUEUE_SIZE + 10):
            dispatcher.submit(notification(n))
        assert quick.done.wait(10), "the quick notifier was held up"
        stuck_status = next(s for s in dispatcher.statuses() if s.target == "stuck")
        # One is being sent, the queue is full, the oldest waiting ones were dropped.
        assert stuck_status.dropped >= 9
        assert stuck_status.pending <= QUEUE_SIZE
        stuck.release.set()
        deadline = time.monotonic() + 10
        while len(stuck.sent) < QUEUE_SIZE + 10 - stuck_status.dropped:
            assert time.monotonic() < deadline, len(stuck.sent)
            time.sleep(0.01)
        # The newest notification was kept.
        assert stuck.sent[-1].alert.key == f"backlog:q{QUEUE_SIZE + 9}"
    finally:
        stuck.release.set()
        dispatcher.close()
