"""``tasklens queues``: every queue's ready, delayed, in-flight and dead counts, oldest age, workers.

For Celery on Redis the table adds each priority step's ready count ("by priority", step:count,
0 served first) and the oldest unacknowledged message's age against the visibility timeout.
"""

from __future__ import annotations

import time
from datetime import datetime

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tasklens.brokers.base import BrokerError, BrokerInspector, BrokerSnapshot, QueueStats
from tasklens.cli.formatting import age, count
from tasklens.cli.options import (
    BoundedFloat,
    BrokerTarget,
    broker_errors,
    broker_options,
    narrowed,
    read_snapshot,
)
from tasklens.monitor.http.schemas import QueuesOut

#: Longest --interval between reads with --watch, in seconds (a day).
MAX_WATCH_INTERVAL = 86400.0

__all__ = ["queues", "queues_document", "queues_summary", "queues_table"]

#: Printed under an empty table: RabbitMQ cannot list its queues without help.
NO_QUEUES_HINT = (
    "no queues found: on RabbitMQ name them with --queue, --app or --rabbitmq-management-url;"
    " on Redis check the URL's database and ?namespace="
)
#: The queue column is at least this wide (or as wide as the longest name, if shorter).
QUEUE_COLUMN_MIN_WIDTH = 20
#: Seconds between two reads with ``--watch``, unless ``--interval`` says otherwise.
DEFAULT_WATCH_INTERVAL = 2.0


def queues_table(snapshot: BrokerSnapshot) -> Table:
    """The snapshot as a table: one row per queue, ``?`` where the broker cannot tell.

    Parameters:
      snapshot(BrokerSnapshot): What was read.
    """
    table = Table()
    # Never squeezed to nothing by the extra Celery columns on a narrow terminal.
    longest = max((len(stats.name) for stats in snapshot.queues), default=len("queue"))
    table.add_column("queue", overflow="fold", min_width=min(longest, QUEUE_COLUMN_MIN_WIDTH))
    # With Dramatiq's and Celery's brokers read together, each row says whose queue it is.
    with_library = len({snapshot.system_of(stats) for stats in snapshot.queues}) > 1
    if with_library:
        table.add_column("library", no_wrap=True)
    for column in ("ready", "delayed", "in flight", "dead", "oldest age", "workers"):
        table.add_column(column, justify="right", no_wrap=True)
    with_priorities = any(stats.priorities is not None for stats in snapshot.queues)
    with_unacked = any(stats.visibility_timeout is not None for stats in snapshot.queues)
    if with_priorities:
        table.add_column("by priority", no_wrap=True)
    if with_unacked:
        table.add_column("oldest unacked", justify="right", no_wrap=True)
    for stats in snapshot.queues:
        cells = [
            stats.name,
            *([snapshot.system_of(stats)] if with_library else []),
            count(stats.ready),
            count(stats.delayed),
            count(stats.in_flight),
            count(stats.dead),
            age(stats.oldest_age),
            count(stats.consumers),
        ]
        if with_priorities:
            cells.append(" ".join(f"{step}:{n}" for step, n in sorted((stats.priorities or {}).items())))
        if with_unacked:
            cells.append(_unacked(stats))
        table.add_row(*cells)
    return table


def _unacked(stats: QueueStats) -> str:
    if stats.oldest_unacked_age is None:
        return "-"
    limit = f" / {age(stats.visibility_timeout)}" if stats.visibility_timeout is not None else ""
    return f"{age(stats.oldest_unacked_age)}{limit}"


def queues_summary(snapshot: BrokerSnapshot, broker: str) -> str:
    """The line under the table: which broker, its live workers, when it was read.

    Parameters:
      snapshot(BrokerSnapshot): What was read.
      broker(str): The redacted broker URL.
    """
    read_at = datetime.fromtimestamp(snapshot.read_at).strftime("%H:%M:%S")
    if snapshot.brokers is None:
        workers = _workers(snapshot.workers, snapshot.workers_note)
        return f"{snapshot.messaging_system} on {broker} · live workers: {workers} · read at {read_at}"
    # Several brokers: a line each, with its own worker count and what limits it.
    lines = [
        f"{part.messaging_system or '?'} on {part.broker} · live workers: "
        f"{_workers(part.workers, part.workers_note)}"
        if part.up
        else f"{part.messaging_system or '?'} on {part.broker} · did not answer: {part.error}"
        for part in snapshot.brokers
    ]
    return "\n".join([*lines, f"read at {read_at}"])


def _workers(workers: int | None, note: str | None) -> str:
    return count(workers) + (f" ({note})" if note else "")


def _render(snapshot: BrokerSnapshot, broker: str) -> Group:
    return Group(queues_table(snapshot), Text(queues_summary(snapshot, broker)))


def queues_document(snapshot: BrokerSnapshot, broker: str, *, indent: int | None = 2) -> str:
    """The snapshot as the JSON of ``GET /api/queues``: unknowns are ``null``.

    Parameters:
      snapshot(BrokerSnapshot): What was read.
      broker(str): The redacted broker URL.
      indent(int|None): JSON indentation; ``None`` for one line.
    """
    return QueuesOut.of(snapshot, broker).model_dump_json(indent=indent)


@click.command()
@broker_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (unknown counts are null).")
@click.option("--watch", is_flag=True, help="Read again every --interval seconds until interrupted.")
@click.option(
    "--interval",
    type=BoundedFloat(0.1, MAX_WATCH_INTERVAL),
    default=DEFAULT_WATCH_INTERVAL,
    show_default=True,
    help="Seconds between reads with --watch.",
)
def queues(target: BrokerTarget, as_json: bool, watch: bool, interval: float) -> None:
    """Show every queue: ready, delayed, in flight, dead, oldest ready message age, workers.

    Counts the broker cannot tell without consuming messages show as "?" (null in JSON), never 0.
    The "workers" column is each queue's consumers where the broker reports them (RabbitMQ); the
    line under the table gives the live worker processes (Redis heartbeats) or all consumers.

    \b
    Example:
      tasklens queues --broker redis://127.0.0.1:6379/0
      tasklens queues --broker amqp://guest:guest@127.0.0.1:5672/%2F --queue default --json
      tasklens queues --app proj.celery:app --broker redis://127.0.0.1:6379/0
    """
    if watch:
        with broker_errors(target), target.open() as inspector:
            _watch(inspector, target, as_json, interval)
        return
    with broker_errors(target):
        snapshot = read_snapshot(target)
    if as_json:
        click.echo(queues_document(snapshot, target.redacted))
        return
    Console().print(_render(snapshot, target.redacted))
    if not snapshot.queues:
        click.echo(NO_QUEUES_HINT)


def _watch(inspector: BrokerInspector, target: BrokerTarget, as_json: bool, interval: float) -> None:
    console = Console()
    try:
        if console.is_terminal and not as_json:
            _watch_live(inspector, target, console, interval)
        else:
            _watch_lines(inspector, target, console, as_json, interval)
    except KeyboardInterrupt:
        return


def _watch_live(inspector: BrokerInspector, target: BrokerTarget, console: Console, interval: float) -> None:
    with Live(console=console, auto_refresh=False) as live:
        while True:
            try:
                live.update(_render(narrowed(inspector.snapshot(), target), target.redacted), refresh=True)
            except BrokerError as exc:
                live.update(f"[red]{exc}[/red] (retrying every {interval:g} s)", refresh=True)
            time.sleep(interval)


def _watch_lines(
    inspector: BrokerInspector, target: BrokerTarget, console: Console, as_json: bool, interval: float
) -> None:
    # Not a terminal: append each read, so that logs and pipes see every one.
    while True:
        try:
            snapshot = narrowed(inspector.snapshot(), target)
        except BrokerError as exc:
            click.echo(f"tasklens: {exc}", err=True)
        else:
            if as_json:
                click.echo(queues_document(snapshot, target.redacted, indent=None))
            else:
                console.print(_render(snapshot, target.redacted))
        time.sleep(interval)
