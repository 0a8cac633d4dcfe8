"""``tasklens workers``: the live workers, one row each where the broker describes them (Celery;
Dramatiq on Redis with workers that announce themselves), else their count."""

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
    """One row per live worker: node name, pool, concurrency, active, processed, last heartbeat,
    and the queues it consumes where workers tell (Dramatiq).

    Parameters:
      snapshot(BrokerSnapshot): What was read (its ``worker_list``).
    """
    listed = snapshot.worker_list or []
    with_queues = any(worker.queues is not None for worker in listed)
    table = Table()
    table.add_column("worker", overflow="fold")
    table.add_column("pool", no_wrap=True)
    for column in ("concurrency", "active", "processed", "last heartbeat"):
        table.add_column(column, justify="right", no_wrap=True)
    if with_queues:
        table.add_column("queues", overflow="fold")
    now = time.time()
    for worker in listed:
        row = [
            worker.hostname,
            worker.pool or "?",
            count(worker.concurrency),
            count(worker.active),
            count(worker.processed),
            f"{age(max(0.0, now - worker.last_heartbeat))} ago",
        ]
        if with_queues:
            row.append(", ".join(worker.queues) if worker.queues is not None else "?")
        table.add_row(*row)
    return table


@click.command()
@broker_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON, as GET /api/workers (unknown is null).")
def workers(target: BrokerTarget, as_json: bool) -> None:
    """Show the live workers.

    Celery workers come from the heartbeats they send (full node name, so a@host and b@host are
    two): the command listens for a moment. With heartbeats disabled (--without-heartbeat) the
    count is unknown, not 0; --ping-workers then asks the workers with inspect ping.

    Dramatiq workers on Redis instrumented by tasklens announce themselves (pid@host, threads,
    queues); without them the count comes from Dramatiq's heartbeats, which include producers
    (the note says so). On RabbitMQ it is the queues' consumers.

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
