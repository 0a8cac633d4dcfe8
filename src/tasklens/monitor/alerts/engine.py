"""The alert engine: evaluates the rules on a timer, tracks each alert, and notifies.

Every ``interval`` seconds, on its own thread, ``AlertEngine`` takes the latest broker read and
the task counters, evaluates the rules, and moves each alert through its life:

- the condition holds: the alert is *pending* until it has held for the rule's ``for``, then
  *fires*: one "firing" notification;
- it still holds ``reminder`` seconds after the last notification: one "reminder";
- it no longer holds: it *resolves*: one "resolved" notification, and it joins the history.

Firing alerts and the history are saved (``AlertStateFile``) at every change, so a restarted
monitor carries on where it stopped: no second "firing" for an alert that fired before.
Notifications go to the ``Dispatcher``, which never blocks the engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.registry import Collector

from tasklens.monitor.alerts.config import AlertConfig
from tasklens.monitor.alerts.dispatch import DeliveryStatus, Dispatcher
from tasklens.monitor.alerts.evaluation import Evaluator, Finding, TaskCounts, task_counts
from tasklens.monitor.alerts.notifiers import Event, Notification, Notifier
from tasklens.monitor.alerts.notifiers.smtp import SmtpNotifier
from tasklens.monitor.alerts.notifiers.webhook import WebhookNotifier
from tasklens.monitor.alerts.rules import RULES
from tasklens.monitor.alerts.state import HISTORY_LIMIT, AlertRecord, AlertStateFile
from tasklens.monitor.watch.snapshots import ReadResult, SnapshotReader

__all__ = ["AlertEngine", "notifiers_for"]

logger = logging.getLogger(__name__)


def notifiers_for(config: AlertConfig) -> list[Notifier]:
    """The notifiers the configuration names.

    Parameters:
      config(AlertConfig): The alerts' configuration.
    """
    notifiers: list[Notifier] = [WebhookNotifier(target) for target in config.webhooks]
    if config.email is not None:
        notifiers.append(SmtpNotifier(config.email))
    return notifiers


class AlertEngine:
    """Evaluates the alert rules and notifies about changes.

    Parameters:
      config(AlertConfig): Rules, notifiers, intervals and where state is kept.
      broker(str): The redacted broker URL, named in notifications.
      dispatcher(Dispatcher|None): Delivers notifications; by default one for
        ``notifiers_for(config)``.
      clock(Callable[[], float]): Wall clock, in Unix seconds (state outlives the process).
    """

    def __init__(
        self,
        config: AlertConfig,
        *,
        broker: str,
        dispatcher: Dispatcher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._broker = broker
        self._dispatcher = dispatcher or Dispatcher(notifiers_for(config))
        self._clock = clock
        self._evaluator = Evaluator(config.rules)
        self._state = AlertStateFile(Path(config.state_path) if config.state_path else None)
        self._lock = threading.Lock()
        self._firing, self._history = self._state.load()
        self._pending: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_evaluated: float | None = None

    # -- reading ---------------------------------------------------------------------------------

    def firing(self) -> list[AlertRecord]:
        """The alerts firing now, oldest first."""
        with self._lock:
            return sorted((AlertRecord(**vars(r)) for r in self._firing.values()), key=lambda r: r.started_at)

    def history(self) -> list[AlertRecord]:
        """Resolved alerts, newest first."""
        with self._lock:
            return [AlertRecord(**vars(r)) for r in self._history]

    def pending(self) -> dict[str, float]:
        """Conditions that hold but not for long enough yet: since when, by alert key."""
        with self._lock:
            return dict(self._pending)

    @property
    def last_evaluated(self) -> float | None:
        """When the rules were last evaluated, Unix seconds."""
        return self._last_evaluated

    def deliveries(self) -> list[DeliveryStatus]:
        """How each notifier is doing."""
        return self._dispatcher.statuses()

    # -- running ---------------------------------------------------------------------------------

    def start(self, reader: SnapshotReader, metrics: Collector) -> None:
        """Evaluate every ``interval`` seconds from ``reader`` and ``metrics``, on a thread.

        Parameters:
          reader(SnapshotReader): The monitor's bounded, cached broker reads.
          metrics(Collector): The task metrics received from the workers.
        """
        self._dispatcher.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(reader, metrics, self._stop), name="tasklens-alerts", daemon=True
        )
        self._thread.start()
        logger.info(
            "Alerts: %d rules, notifying %s.",
            sum(s.enabled for s in self.config.rules.values()),
            ", ".join(self.config.targets) or "nobody (dashboard and /api/alerts only)",
        )

    def close(self) -> None:
        """Stop evaluating and let the notifiers finish what is queued (briefly)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.interval + 10)
            self._thread = None
        self._dispatcher.close()

    def _run(self, reader: SnapshotReader, metrics: Collector, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.evaluate(reader.result(), task_counts(metrics))
            except Exception:
                logger.exception("Evaluating the alert rules failed.")
            stop.wait(self.config.interval)

    def evaluate(self, read: ReadResult | None, counts: TaskCounts) -> None:
        """Evaluate once and act on what changed.

        Parameters:
          read(ReadResult|None): The latest broker read.
          counts(TaskCounts): The task counters now.
        """
        now = self._clock()
        evaluation = self._evaluator.evaluate(now, read, counts)
        holding = {finding.key: finding for finding in evaluation.findings}
        notifications: list[tuple[Event, AlertRecord]] = []
        with self._lock:
            changed = False
            for key, finding in holding.items():
                record = self._firing.get(key)
                if record is None:
                    changed |= self._maybe_fire(finding, now, notifications)
                else:
                    record.summary, record.value = finding.summary, finding.value
                    if self.config.reminder is not None and now - record.notified_at >= self.config.reminder:
                        record.notified_at = now
                        record.reminders += 1
                        notifications.append(("reminder", record))
                        changed = True
            for key in [k for k in self._pending if k not in holding]:
                del self._pending[key]
            for key, record in list(self._firing.items()):
                # An alert of a rule switched off since it fired resolves; one whose rule could
                # not be evaluated this time (the broker did not answer) stays as it was.
                disabled = (
                    not self.config.rules[record.rule].enabled if record.rule in self.config.rules else True
                )
                if key in holding or (record.rule not in evaluation.evaluated and not disabled):
                    continue
                del self._firing[key]
                record.resolved_at = now
                self._history.insert(0, record)
                del self._history[HISTORY_LIMIT:]
                notifications.append(("resolved", record))
                changed = True
            if changed:
                self._save()
            self._last_evaluated = now
        for event, record in notifications:
            level = logging.INFO if event == "resolved" else logging.WARNING
            logger.log(level, "Alert %s: %s", event, record.summary)
            self._dispatcher.submit(Notification.of(event, record, self._broker))

    def _maybe_fire(
        self, finding: Finding, now: float, notifications: list[tuple[Event, AlertRecord]]
    ) -> bool:
        since = self._pending.setdefault(finding.key, now)
        if now - since < self.config.rules[finding.rule].for_seconds:
            return False
        del self._pending[finding.key]
        record = AlertRecord(
            key=finding.key,
            rule=finding.rule,
            queue=finding.queue,
            severity=RULES[finding.rule].severity,
            summary=finding.summary,
            value=finding.value,
            started_at=now,
            notified_at=now,
        )
        self._firing[finding.key] = record
        notifications.append(("firing", record))
        return True

    def _save(self) -> None:
        try:
            self._state.save(self._firing, self._history)
        except OSError as exc:
            logger.error("Could not save the alert state to %s: %s", self._state.path, exc)
