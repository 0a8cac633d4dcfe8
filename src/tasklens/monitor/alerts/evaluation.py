"""Evaluating the alert rules from what the monitor sees: broker snapshots and task metrics.

Queue conditions (backlog, oldest message, live workers, dead letters) come from the
``SnapshotReader``'s broker reads; error rate and retries from the task metrics workers export to
the monitor (``ReceivedMetrics``), as increases over each rule's window between the samples the
evaluator keeps. When the broker does not answer, only ``broker_unreachable`` is evaluated: the
other conditions are unknown, not false, so what was firing keeps firing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.registry import Collector

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot, QueueStats
from tasklens.monitor.alerts.rules import RuleSettings
from tasklens.monitor.watch.gauges import prometheus_label, prometheus_name
from tasklens.monitor.watch.snapshots import ReadResult

__all__ = ["Evaluation", "Evaluator", "Finding", "TaskCounts", "task_counts"]

_QUEUE_LABEL = prometheus_label(semconv.MESSAGING_DESTINATION_NAME)
_ERROR_LABEL = prometheus_label(semconv.ERROR_TYPE)
_CONSUMED = prometheus_name(semconv.CONSUMED_MESSAGES)
_RETRIES = prometheus_name(semconv.MESSAGE_RETRIES)


@dataclass(frozen=True)
class TaskCounts:
    """Task counters summed per queue, as exported by the workers.

    Parameters:
      consumed(dict[str, float]): Processed messages, failed ones included.
      failed(dict[str, float]): Processed messages that ended with an error.
      retries(dict[str, float]): Retries scheduled.
    """

    consumed: dict[str, float] = field(default_factory=dict)
    failed: dict[str, float] = field(default_factory=dict)
    retries: dict[str, float] = field(default_factory=dict)


def task_counts(metrics: Collector) -> TaskCounts:
    """The counters ``metrics`` would serve on ``/metrics``, summed per queue.

    Parameters:
      metrics(Collector): The monitor's ``ReceivedMetrics``.
    """
    counts = TaskCounts()
    for family in metrics.collect():
        name = family.name.removesuffix("_total")
        if name not in (_CONSUMED, _RETRIES):
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            queue = sample.labels.get(_QUEUE_LABEL, "")
            if name == _RETRIES:
                _add(counts.retries, queue, sample.value)
                continue
            _add(counts.consumed, queue, sample.value)
            if sample.labels.get(_ERROR_LABEL):
                _add(counts.failed, queue, sample.value)
    return counts


def _add(totals: dict[str, float], queue: str, value: float) -> None:
    totals[queue] = totals.get(queue, 0.0) + value


@dataclass(frozen=True)
class Finding:
    """A rule's condition holds.

    Parameters:
      rule(str): The rule's name.
      queue(str|None): The queue it is about; ``None`` for the broker as a whole.
      value(float): The measured value (messages, seconds, a fraction...).
      summary(str): One line for people.
    """

    rule: str
    queue: str | None
    value: float
    summary: str

    @property
    def key(self) -> str:
        """Identifies the alert: one per rule and queue."""
        return f"{self.rule}:{self.queue or ''}"


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation.

    Parameters:
      findings(list[Finding]): Every condition that holds now.
      evaluated(frozenset[str]): The rules that could be evaluated: an alert of another rule
        neither fires nor resolves this time.
    """

    findings: list[Finding]
    evaluated: frozenset[str]


@dataclass(frozen=True)
class _Sample:
    at: float
    dead: dict[str, int] | None
    counts: TaskCounts


class Evaluator:
    """Evaluates the rules, keeping the samples their windows need.

    Parameters:
      rules(Mapping[str, RuleSettings]): Each rule's settings.
    """

    def __init__(self, rules: Mapping[str, RuleSettings]) -> None:
        self._rules = {name: settings for name, settings in rules.items() if settings.enabled}
        self._keep = max((s.window for s in self._rules.values()), default=0.0)
        self._samples: deque[_Sample] = deque()

    def evaluate(self, now: float, read: ReadResult | None, counts: TaskCounts) -> Evaluation:
        """Record a sample taken at ``now`` and judge every enabled rule.

        Parameters:
          now(float): When the sample was taken, Unix seconds.
          read(ReadResult|None): The latest broker read (``None``: not read yet).
          counts(TaskCounts): The task counters now.
        """
        snapshot = read.snapshot if read is not None else None
        dead = None
        if snapshot is not None:
            dead = {q.name: q.dead for q in snapshot.queues if q.dead is not None}
        self._samples.append(_Sample(now, dead, counts))
        while len(self._samples) > 2 and self._samples[1].at <= now - self._keep:
            self._samples.popleft()

        findings: list[Finding] = []
        evaluated: set[str] = set()
        if read is not None and "broker_unreachable" in self._rules:
            evaluated.add("broker_unreachable")
            if read.error is not None:
                findings.append(
                    Finding("broker_unreachable", None, 1.0, f"the broker does not answer: {read.error}")
                )
        for rule in ("error_rate", "retry_storm"):
            if rule in self._rules:
                evaluated.add(rule)
                findings.extend(self._ratio(rule, now))
        if snapshot is not None:
            for rule in ("backlog", "oldest_message_age", "no_live_workers", "dead_letters_growing"):
                if rule in self._rules:
                    evaluated.add(rule)
                    findings.extend(self._queue_findings(rule, snapshot, now))
        return Evaluation(findings, frozenset(evaluated))

    def _since(self, now: float, window: float) -> _Sample:
        """The oldest sample within ``window`` of ``now`` (the oldest kept, when all are older)."""
        for sample in self._samples:
            if sample.at >= now - window:
                return sample
        return self._samples[-1]

    def _queue_findings(self, rule: str, snapshot: BrokerSnapshot, now: float) -> Iterable[Finding]:
        threshold = self._rules[rule].threshold
        for stats in snapshot.queues:
            if rule == "backlog" and (stats.ready or 0) > threshold:
                yield Finding(
                    rule,
                    stats.name,
                    float(stats.ready or 0),
                    f"queue {stats.name!r} has {stats.ready} ready messages (threshold {threshold:g})",
                )
            elif rule == "oldest_message_age" and (stats.oldest_age or 0.0) > threshold:
                yield Finding(
                    rule,
                    stats.name,
                    float(stats.oldest_age or 0.0),
                    f"the oldest ready message of {stats.name!r} is {stats.oldest_age:.0f} s old"
                    f" (threshold {threshold:g} s)",
                )
            elif rule == "no_live_workers" and stats.pending > 0 and _no_workers(snapshot, stats):
                yield Finding(
                    rule,
                    stats.name,
                    float(stats.pending),
                    f"queue {stats.name!r} has {stats.pending} messages waiting and no live worker",
                )
            elif rule == "dead_letters_growing" and stats.dead is not None:
                before = self._since(now, self._rules[rule].window).dead
                if before is None:
                    continue
                # A queue the earlier read did not find did not exist then: it had no dead letters.
                growth = stats.dead - before.get(stats.name, 0)
                if growth > threshold:
                    window = self._rules[rule].window
                    yield Finding(
                        rule,
                        stats.name,
                        float(growth),
                        f"{growth} new dead letters in {stats.name!r} over the last {window:g} s"
                        f" ({stats.dead} in all)",
                    )

    def _ratio(self, rule: str, now: float) -> Iterable[Finding]:
        settings = self._rules[rule]
        before = self._since(now, settings.window).counts
        latest = self._samples[-1].counts
        part_now, part_before = (
            (latest.failed, before.failed) if rule == "error_rate" else (latest.retries, before.retries)
        )
        for queue, consumed in latest.consumed.items():
            processed = _increase(consumed, before.consumed.get(queue, 0.0))
            part = _increase(part_now.get(queue, 0.0), part_before.get(queue, 0.0))
            if processed <= 0 or part / processed <= settings.threshold:
                continue
            ratio = part / processed
            what = "failed" if rule == "error_rate" else "retries for"
            yield Finding(
                rule,
                queue,
                ratio,
                f"{ratio:.0%} {what} the {processed:.0f} messages of {queue!r} processed over the last"
                f" {settings.window:g} s (threshold {settings.threshold:.0%})",
            )


def _increase(now: float, before: float) -> float:
    # Sums the monitor serves never go down; a smaller value means the monitor's own restart.
    return now - before if now >= before else now


def _no_workers(snapshot: BrokerSnapshot, stats: QueueStats) -> bool:
    if stats.consumers is not None:
        return stats.consumers == 0
    if snapshot.brokers is not None:
        # Several brokers: the workers of the queue's own library, where they are known.
        system = snapshot.system_of(stats)
        counts = [p.workers for p in snapshot.brokers if p.up and p.messaging_system == system]
        known = [count for count in counts if count is not None]
        return bool(known) and sum(known) == 0
    return snapshot.workers == 0
