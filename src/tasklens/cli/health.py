"""``tasklens health``: one line and an exit status, usable as a Kubernetes exec probe."""

from __future__ import annotations

import time
from dataclasses import replace

import click

from tasklens.brokers.base import BrokerSnapshot, BrokerUnavailable
from tasklens.cli.options import (
    EXIT_UNREACHABLE,
    MAX_AGE,
    MAX_COUNT,
    BoundedFloat,
    BrokerTarget,
    broker_errors,
    broker_options,
    read_snapshot,
    threshold_options,
)
from tasklens.cli.worker_probe import check_worker
from tasklens.monitor.http.health import health_body
from tasklens.monitor.settings import HealthThresholds
from tasklens.monitor.watch.health import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    HealthReport,
    assess_health,
    unreachable_report,
)

__all__ = ["EXIT_STATUS", "health"]

#: How far back ``--max-new-dead`` looks unless ``--dead-window`` says otherwise, in seconds.
DEFAULT_DEAD_WINDOW = 300.0
#: Newest dead letters of a queue read to count those that died within the window.
NEW_DEAD_SCAN = 1000
#: Exit status of each verdict; an unreachable broker exits with 2 too.
EXIT_STATUS = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: EXIT_UNREACHABLE}


@click.command()
@broker_options
@threshold_options
@click.option(
    "--max-new-dead",
    type=click.IntRange(0, MAX_COUNT),
    metavar="N",
    help="Degraded when more than N messages of one queue were dead-lettered within --dead-window.",
)
@click.option(
    "--dead-window",
    type=BoundedFloat(1, MAX_AGE),
    default=DEFAULT_DEAD_WINDOW,
    show_default=True,
    metavar="SECONDS",
    help="How far back --max-new-dead looks, in seconds.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (as GET /api/health), unreachable too."
)
@click.option(
    "--worker",
    metavar="URL",
    help="Check a worker's own health endpoint instead (exit 0 healthy, 1 not), like http://127.0.0.1:8099.",
)
def health(
    target: BrokerTarget,
    thresholds: HealthThresholds,
    max_new_dead: int | None,
    dead_window: float,
    as_json: bool,
    worker: str | None,
) -> None:
    """Check the queues: exit 0 when healthy, 1 when degraded, 2 when the broker is unreachable.

    Degraded means the broker answers but a threshold is crossed: a queue's backlog
    (--max-backlog), the age of its oldest ready message (--max-age), its dead letters
    (--max-dead), how many died lately (--max-new-dead within --dead-window: the dead-letter queue
    is growing), or too few live workers (--min-workers).

    \b
    Example (a Kubernetes exec probe):
      tasklens health --broker redis://redis:6379/0 --max-backlog 10000 --max-age 300 --min-workers 1
      tasklens health --worker http://127.0.0.1:8099   # the worker's liveness (TASKLENS_WORKER_HEALTH=1)
      tasklens health --max-dead 100 --max-new-dead 0 --dead-window 600
    """
    if worker is not None:
        check_worker(worker)
    with broker_errors(target):
        try:
            snapshot = read_snapshot(target)
            new_dead = (
                _dead_since(target, snapshot, time.time() - dead_window) if max_new_dead is not None else {}
            )
        except BrokerUnavailable as exc:
            if as_json:
                click.echo(
                    health_body(unreachable_report(target.redacted, str(exc))).model_dump_json(indent=2)
                )
            raise
    report = assess_health(snapshot, thresholds, broker=target.redacted)
    if max_new_dead is not None:
        growth = [
            f"queue {name!r} gained {count} dead letters in the last {dead_window:g} s (max {max_new_dead})"
            for name, count in sorted(new_dead.items())
            if count > max_new_dead
        ]
        if growth:
            report = replace(report, status=DEGRADED, reasons=[*report.reasons, *growth])
    if as_json:
        click.echo(health_body(report).model_dump_json(indent=2))
    else:
        click.echo(_summary(report))
    raise SystemExit(EXIT_STATUS[report.status])


def _dead_since(target: BrokerTarget, snapshot: BrokerSnapshot, since: float) -> dict[str, int]:
    """Per queue holding dead letters, how many died at or after ``since`` (among the newest
    ``NEW_DEAD_SCAN`` of them)."""
    counts: dict[str, int] = {}
    with target.open() as inspector:
        for stats in snapshot.queues:
            if not stats.dead:
                continue
            holder = inspector.for_queue(stats.name, snapshot.system_of(stats))
            page = holder.dead_letters(stats.name, limit=NEW_DEAD_SCAN)
            new = sum(1 for letter in page.items if (letter.died_at or 0.0) >= since)
            counts[stats.name] = counts.get(stats.name, 0) + new
    return counts


def _plural(count: int | None, word: str) -> str:
    shown = "?" if count is None else str(count)
    return f"{shown} {word}{'' if count == 1 else 's'}"


def _summary(report: HealthReport) -> str:
    line = (
        f"{report.status}: {report.broker}, {_plural(len(report.queues), 'queue')},"
        f" {report.total_pending} pending, {_plural(report.workers, 'live worker')}"
    )
    if report.workers_note:
        line += f" ({report.workers_note})"
    return line + "".join(f"; {reason}" for reason in report.reasons)
