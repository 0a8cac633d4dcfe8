"""``tasklens health``: one line and an exit status, usable as a Kubernetes exec probe."""

from __future__ import annotations

import click

from tasklens.brokers.base import BrokerUnavailable
from tasklens.cli.options import (
    EXIT_UNREACHABLE,
    BrokerTarget,
    broker_errors,
    broker_options,
    threshold_options,
)
from tasklens.cli.worker_probe import check_worker
from tasklens.monitor.health import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    HealthReport,
    assess_health,
    unreachable_report,
)
from tasklens.monitor.settings import HealthThresholds

__all__ = ["EXIT_STATUS", "health"]

#: Exit status of each verdict; an unreachable broker exits with 2 too.
EXIT_STATUS = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: EXIT_UNREACHABLE}


@click.command()
@broker_options
@threshold_options
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON (as GET /api/health), unreachable too."
)
@click.option(
    "--worker",
    metavar="URL",
    help="Check a worker's own health endpoint instead (exit 0 healthy, 1 not), like http://127.0.0.1:8099.",
)
def health(target: BrokerTarget, thresholds: HealthThresholds, as_json: bool, worker: str | None) -> None:
    """Check the queues: exit 0 when healthy, 1 when degraded, 2 when the broker is unreachable.

    Degraded means the broker answers but a threshold is crossed: a queue's backlog
    (--max-backlog), the age of its oldest ready message (--max-age), or too few live workers
    (--min-workers).

    \b
    Example (a Kubernetes exec probe):
      tasklens health --broker redis://redis:6379/0 --max-backlog 10000 --max-age 300 --min-workers 1
      tasklens health --worker http://127.0.0.1:8099   # the worker's liveness (TASKLENS_WORKER_HEALTH=1)
    """
    if worker is not None:
        check_worker(worker)
    with broker_errors(target):
        try:
            with target.open() as inspector:
                snapshot = inspector.snapshot()
        except BrokerUnavailable as exc:
            if as_json:
                click.echo(unreachable_report(target.redacted, str(exc)).to_model().model_dump_json(indent=2))
            raise
    report = assess_health(snapshot, thresholds, broker=target.redacted)
    if as_json:
        click.echo(report.to_model().model_dump_json(indent=2))
    else:
        click.echo(_summary(report))
    raise SystemExit(EXIT_STATUS[report.status])


def _summary(report: HealthReport) -> str:
    workers = "?" if report.workers is None else str(report.workers)
    if report.workers_note:
        workers += f" ({report.workers_note})"
    line = (
        f"{report.status}: {report.broker}, {len(report.queues)} queues,"
        f" {report.total_pending} pending, {workers} live workers"
    )
    return line + "".join(f"; {reason}" for reason in report.reasons)
