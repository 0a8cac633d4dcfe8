"""Whether the queues are healthy: one verdict shared by ``/api/health`` and ``tasklens health``.

- ``unhealthy``: the broker did not answer (none of them, when the monitor reads several).
- ``degraded``: it answered, but a threshold is crossed (a queue's backlog, the age of its oldest
  ready message, or too few live workers), or one of several brokers did not answer.
- ``healthy``: otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tasklens.brokers.base import BrokerPart, BrokerSnapshot, QueueStats
from tasklens.monitor.settings import HealthThresholds

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "UNHEALTHY",
    "HealthReport",
    "HealthStatus",
    "assess_health",
    "unreachable_report",
]

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
HEALTHY: HealthStatus = "healthy"
DEGRADED: HealthStatus = "degraded"
UNHEALTHY: HealthStatus = "unhealthy"


@dataclass(frozen=True)
class HealthReport:
    """The verdict and what it is based on.

    Parameters:
      status(HealthStatus): healthy, degraded or unhealthy.
      broker(str): The redacted broker URL.
      workers(int|None): Live workers, ``None`` when unknown or unreachable.
      queues(list[QueueStats]): Every queue read.
      reasons(list[str]): Why the status is not healthy.
      messaging_system(str|None): The task library read, ``None`` when unreachable.
      workers_note(str|None): Why ``workers`` is unknown, when it is.
      brokers(list[BrokerPart]|None): Each broker read, when there are several.
    """

    status: HealthStatus
    broker: str
    workers: int | None
    queues: list[QueueStats] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    messaging_system: str | None = None
    workers_note: str | None = None
    brokers: list[BrokerPart] | None = None

    @property
    def total_pending(self) -> int:
        """Ready plus delayed messages over every queue."""
        return sum(stats.pending for stats in self.queues)


def assess_health(snapshot: BrokerSnapshot, thresholds: HealthThresholds, *, broker: str) -> HealthReport:
    """Judge a snapshot of a broker that answered.

    Parameters:
      snapshot(BrokerSnapshot): The broker read.
      thresholds(HealthThresholds): When to say degraded.
      broker(str): The redacted broker URL.
    """
    down = [
        f"broker {part.broker} did not answer: {part.error}" for part in snapshot.brokers or () if not part.up
    ]
    reasons = [
        *down,
        *_queue_reasons(snapshot.queues, thresholds),
        *_worker_reasons(snapshot.workers, thresholds),
    ]
    return HealthReport(
        status=DEGRADED if reasons else HEALTHY,
        broker=broker,
        workers=snapshot.workers,
        queues=list(snapshot.queues),
        reasons=reasons,
        messaging_system=snapshot.messaging_system,
        workers_note=snapshot.workers_note,
        brokers=snapshot.brokers,
    )


def unreachable_report(broker: str, error: str) -> HealthReport:
    """The report for a broker that did not answer.

    Parameters:
      broker(str): The redacted broker URL.
      error(str): What went wrong, without credentials.
    """
    return HealthReport(status=UNHEALTHY, broker=broker, workers=None, reasons=[error])


def _queue_reasons(queues: list[QueueStats], thresholds: HealthThresholds) -> list[str]:
    reasons = []
    for stats in queues:
        if thresholds.max_backlog is not None and stats.pending > thresholds.max_backlog:
            reasons.append(
                f"queue {stats.name!r} has {stats.pending} pending messages (max {thresholds.max_backlog})"
            )
        if thresholds.max_dead is not None and (stats.dead or 0) > thresholds.max_dead:
            reasons.append(f"queue {stats.name!r} has {stats.dead} dead letters (max {thresholds.max_dead})")
        if _about_to_redeliver(stats):
            reasons.append(
                f"queue {stats.name!r} has a message unacknowledged for {stats.oldest_unacked_age:.0f} s:"
                f" it is delivered again after the visibility timeout ({stats.visibility_timeout:g} s)"
            )
        too_old = thresholds.max_age is not None and (stats.oldest_age or 0.0) > thresholds.max_age
        if too_old:
            reasons.append(
                f"queue {stats.name!r} oldest ready message is {stats.oldest_age:.1f} s old"
                f" (max {thresholds.max_age:g} s)"
            )
    return reasons


#: Share of the visibility timeout beyond which an unacknowledged message is about to be redelivered.
REDELIVERY_WARNING = 0.9


def _about_to_redeliver(stats: QueueStats) -> bool:
    if stats.oldest_unacked_age is None or not stats.visibility_timeout:
        return False
    return stats.oldest_unacked_age >= REDELIVERY_WARNING * stats.visibility_timeout


def _worker_reasons(workers: int | None, thresholds: HealthThresholds) -> list[str]:
    if thresholds.min_workers is None or workers is None or workers >= thresholds.min_workers:
        return []
    return [f"{workers} live workers (min {thresholds.min_workers})"]
