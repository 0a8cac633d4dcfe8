"""``tasklens workers``: the live workers, one row each (Celery), or their count (Dramatiq)."""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.table import Table

from tasklens.brokers.base import BrokerSnapshot
from tasklens.cli.formatting import age, count
from tasklens.cli.options import BrokerTarget, broker_options, opened
from tasklens.monitor.http.schemas import WorkersOut

__all__ = ["workers", "workers_table"]


def workers_table(snapshot: BrokerSnapshot) -> Table:
    """One row per live worker: node name, pool, concurrency, active, processed, last heartbeat.

    Parameters:
      snapshot(BrokerSnapshot): What was read (its ``worker_list``).
    """
    table = Table()
    table.add_column("worker", overflow="fold")
    table.add_column("pool", no_wrap=True)
    for column in ("concurrency", "active", "processed", "last heartbeat"):
        table.add_column(column, justify="right", no_wrap=True)
    now = time.time()
    for worker in snapshot.worker_list or []:
        table.add_row(
            worker.hostname,
            worker.pool or "?",
            count(worker.concurrency),
            count(worker.active),
            count(worker.processed),
            f"{age(max(0.0, now - worker.last_heartbeat))} ago",
        )
    return table


@click.command()
@broker_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as GET /api/workers (unknown is null).")
def workers(target: BrokerTarget, as_json: bool) -> None:
    """Show the live workers.

    Celery workers come from the heartbeats they send (full node name, so a@host and b@host are
    two): the command listens for a moment. With heartbeats disabled (--without-heartbeat) the
    count is unknown, not 0; --ping-workers then asks the workers with inspect ping.

    \b
    Example:
      tasklens workers --broker redis://127.0.0.1:6379/0 --library celery
    """
    with opened(target) as inspector:
        snapshot = inspector.snapshot()
    if as_json:
        click.echo(WorkersOut.of(snapshot, target.redacted).model_dump_json(indent=2))
        return
    console = Console()
    if snapshot.worker_list is not None:
        console.print(workers_table(snapshot))
    note = f" ({snapshot.workers_note})" if snapshot.workers_note else ""
    console.print(
        f"{snapshot.messaging_system} on {target.redacted} · live workers: {count(snapshot.workers)}{note}"
    )
