"""``tasklens dlq``: list, show, requeue, delete and purge a queue's dead letters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from tasklens import semconv
from tasklens.brokers.base import BrokerInspector, DeadLetter, DeadLetterPage, MessageNotFound
from tasklens.brokers.base import Progress as ProgressCallback
from tasklens.cli.formatting import age, short_id
from tasklens.cli.options import MAX_COUNT, BrokerTarget, broker_options, opened
from tasklens.monitor.http.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tasklens.monitor.http.schemas import DeadLetterOut, DeadLetterPageOut
from tasklens.monitor.settings import DEFAULT_HOST, DEFAULT_PORT

__all__ = ["DASHBOARD_URL_ENV", "PROGRESS_THRESHOLD", "dlq"]

#: Requeues of at least this many messages show a progress bar.
PROGRESS_THRESHOLD = 100
#: Narrower terminals (a pipe gets 80 columns) list message ids shortened, as the dashboard does.
FULL_ID_WIDTH = 120
#: The widest the actor column gets before its names are cut, in characters.
ACTOR_WIDTH = 24
#: Where ``dlq show`` points for a message's trace, unless ``--dashboard-url`` says otherwise.
DASHBOARD_URL_ENV = "TASKLENS_DASHBOARD_URL"
DEFAULT_DASHBOARD_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
#: Characters in a full Dramatiq message id (a UUID), and the fewest a shortened one may keep.
FULL_MESSAGE_ID = 36
MIN_PREFIX = 6
#: The W3C header that carries the trace id in a message's context.
TRACEPARENT = "traceparent"


@click.group()
def dlq() -> None:
    """Dead letters: list, show, requeue, delete, purge.

    \b
    Example:
      tasklens dlq list default
      tasklens dlq show default 5f1c...
      tasklens dlq requeue default --all --reset-retries --yes

    With several brokers, a queue name both libraries use needs --library dramatiq|celery.
    """


@dlq.command("list")
@broker_options
@click.argument("queue")
@click.option(
    "--offset", type=click.IntRange(0, MAX_COUNT), default=0, show_default=True, help="Skip this many."
)
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=MAX_PAGE_SIZE),
    default=DEFAULT_PAGE_SIZE,
    show_default=True,
    help="Show at most this many.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_dead(target: BrokerTarget, queue: str, offset: int, limit: int, as_json: bool) -> None:
    """List QUEUE's dead letters: newest first on Redis, oldest first on RabbitMQ.

    \b
    Example:
      tasklens dlq list default --limit 20
    """
    with opened(target) as broker:
        inspector = broker.for_queue(queue, target.queue_library)
        page = inspector.dead_letters(queue, offset=offset, limit=limit)
    if as_json:
        click.echo(_page_document(page).model_dump_json(indent=2))
        return
    console = Console()
    full_ids = console.width >= FULL_ID_WIDTH
    console.print(_page_table(page, full_ids=full_ids))
    shown = f"{offset + 1}-{offset + len(page.items)}" if page.items else "none"
    console.print(f"{shown} of {page.total} dead letters in {queue!r}", soft_wrap=True)
    if page.items and not full_ids:
        console.print("ids are shortened: `tasklens dlq show QUEUE ID` takes them as shown", soft_wrap=True)


@dlq.command("show")
@broker_options
@click.argument("queue")
@click.argument("message_id")
@click.option(
    "--dashboard-url",
    envvar=DASHBOARD_URL_ENV,
    default=DEFAULT_DASHBOARD_URL,
    show_default=True,
    metavar="URL",
    help=f"The tasklens monitor the trace link points to; also {DASHBOARD_URL_ENV}.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show_dead(target: BrokerTarget, queue: str, message_id: str, dashboard_url: str, as_json: bool) -> None:
    """Show one dead letter of QUEUE: actor, args, kwargs, trace, options and traceback.

    MESSAGE_ID may be shortened, as `dlq list` and the dashboard show it ("8a3f0c1e-5d5b…"), as
    long as one dead letter of QUEUE starts with it.

    \b
    Example:
      tasklens dlq show default 8a3f0c1e-5d5b-4c0e-9d7e-1b2f3c4d5e6f
      tasklens dlq show default 8a3f0c1e-5d5b
    """
    with opened(target) as broker:
        inspector = broker.for_queue(queue, target.queue_library)
        letter = _find_letter(inspector, queue, message_id)
    if as_json:
        click.echo(DeadLetterOut.of(letter).model_dump_json(indent=2))
        return
    options = {key: value for key, value in letter.options.items() if key != "traceback"}
    trace_id = _trace_id(letter)
    click.echo(f"message id:  {letter.message_id}")
    click.echo(f"queue:       {letter.queue}")
    click.echo(f"actor:       {letter.actor}")
    click.echo(f"trace id:    {trace_id or '? (no trace context in the message)'}")
    if trace_id:
        click.echo(f"dashboard:   {dashboard_url.rstrip('/')}/runs/{trace_id}")
    click.echo(f"args:        {json.dumps(letter.args, default=repr)}")
    click.echo(f"kwargs:      {json.dumps(letter.kwargs, default=repr)}")
    click.echo(f"retries:     {letter.retries}")
    click.echo(f"enqueued:    {_when(letter.enqueued_at)}")
    click.echo(f"died:        {_when(letter.died_at)}")
    click.echo(f"options:     {json.dumps(options, default=repr, sort_keys=True)}")
    click.echo("traceback:")
    click.echo(letter.traceback or "  (none recorded)")


@dlq.command("requeue")
@broker_options
@click.argument("queue")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "requeue_all", is_flag=True, help="Requeue every dead letter of QUEUE.")
@click.option("--reset-retries", is_flag=True, help="Set the messages' retry count back to 0.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (with --all).")
def requeue(
    target: BrokerTarget,
    queue: str,
    message_ids: tuple[str, ...],
    requeue_all: bool,
    reset_retries: bool,
    yes: bool,
) -> None:
    """Move dead letters of QUEUE back to it: the MESSAGE_IDS given, or --all.

    When one of the MESSAGE_IDS is not a dead letter of QUEUE, nothing is requeued (exit 1).

    \b
    Example:
      tasklens dlq requeue default 8a3f0c1e-5d5b-4c0e-9d7e-1b2f3c4d5e6f
      tasklens dlq requeue default --all --reset-retries --yes
    """
    if requeue_all == bool(message_ids):
        raise click.UsageError("give the message ids to requeue, or --all (not both)")
    with opened(target) as broker:
        inspector = broker.for_queue(queue, target.queue_library)
        if requeue_all:
            total = inspector.dead_letters(queue, limit=1).total
            if total == 0:
                click.echo(f"no dead letters in {queue!r}")
                return
            if not yes:
                click.confirm(f"Requeue all {total} dead letters of {queue!r}?", abort=True, err=True)
        with _progress_bar(f"requeueing {queue}") as progress:
            moved = inspector.requeue_dead(
                queue,
                None if requeue_all else list(message_ids),
                reset_retries=reset_retries,
                progress=progress,
            )
    click.echo(f"requeued {moved} dead letters to {queue!r}")


@dlq.command("delete")
@broker_options
@click.argument("queue")
@click.argument("message_ids", nargs=-1, required=True)
def delete(target: BrokerTarget, queue: str, message_ids: tuple[str, ...]) -> None:
    """Delete the dead letters MESSAGE_IDS of QUEUE.

    When one of them is not a dead letter of QUEUE, nothing is deleted (exit 1).

    \b
    Example:
      tasklens dlq delete default 8a3f0c1e-5d5b-4c0e-9d7e-1b2f3c4d5e6f
    """
    with opened(target) as broker:
        inspector = broker.for_queue(queue, target.queue_library)
        deleted = inspector.delete_dead(queue, list(message_ids))
    click.echo(f"deleted {deleted} dead letters from {queue!r}")


@dlq.command("purge")
@broker_options
@click.argument("queue")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def purge(target: BrokerTarget, queue: str, yes: bool) -> None:
    """Delete every dead letter of QUEUE. This cannot be undone.

    \b
    Example:
      tasklens dlq purge default --yes
    """
    with opened(target) as broker:
        inspector = broker.for_queue(queue, target.queue_library)
        total = inspector.dead_letters(queue, limit=1).total
        if total == 0:
            click.echo(f"no dead letters in {queue!r}")
            return
        if not yes:
            click.confirm(
                f"Delete all {total} dead letters of {queue!r}? This cannot be undone.", abort=True, err=True
            )
        purged = inspector.purge_dead(queue)
    click.echo(f"purged {purged} dead letters from {queue!r}")


@contextmanager
def _progress_bar(description: str) -> Iterator[ProgressCallback]:
    """A ``progress(done, total)`` callback that draws a bar on stderr once the action is large."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task: list[TaskID] = []

    def progress(done: int, total: int) -> None:
        if total < PROGRESS_THRESHOLD:
            return
        if not task:
            bar.start()
            task.append(bar.add_task(description, total=total))
        bar.update(task[0], completed=done, total=total)

    try:
        yield progress
    finally:
        if task:
            bar.stop()


def _page_document(page: DeadLetterPage) -> DeadLetterPageOut:
    return DeadLetterPageOut(
        items=[DeadLetterOut.of(letter) for letter in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


def _page_table(page: DeadLetterPage, *, full_ids: bool = True) -> Table:
    # One line per dead letter, however narrow the terminal: long errors and names are cut.
    table = Table()
    table.add_column("message id", no_wrap=True)
    table.add_column("actor", no_wrap=True, overflow="ellipsis", max_width=ACTOR_WIDTH)
    table.add_column("retries", justify="right", no_wrap=True)
    table.add_column("died", justify="right", no_wrap=True)
    table.add_column("error", ratio=1, no_wrap=True, overflow="ellipsis")
    now = time.time()
    for letter in page.items:
        died = None if letter.died_at is None else now - letter.died_at
        shown_id = letter.message_id if full_ids else short_id(letter.message_id)
        table.add_row(shown_id, letter.actor, str(letter.retries), _ago(died), _last_line(letter))
    return table


def _find_letter(inspector: BrokerInspector, queue: str, message_id: str) -> DeadLetter:
    """The dead letter with this id, or the only one whose id starts with it (a shortened id)."""
    try:
        return inspector.dead_letter(queue, message_id)
    except MessageNotFound:
        prefix = message_id.rstrip("…").removesuffix("...")
        if len(prefix) < MIN_PREFIX or (prefix == message_id and len(prefix) >= FULL_MESSAGE_ID):
            raise
    matches = [letter for letter in _every_letter(inspector, queue) if letter.message_id.startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise MessageNotFound(f"no dead letter {message_id!r} in queue {queue!r}") from None
    shown = ", ".join(letter.message_id for letter in matches[:3])
    raise MessageNotFound(
        f"{len(matches)} dead letters of {queue!r} start with {prefix!r} ({shown}...): give more of the id"
    )


def _every_letter(inspector: BrokerInspector, queue: str) -> Iterator[DeadLetter]:
    offset = 0
    while True:
        page = inspector.dead_letters(queue, offset=offset, limit=MAX_PAGE_SIZE)
        yield from page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return


def _trace_id(letter: DeadLetter) -> str | None:
    """The trace the message belongs to, from the context it carries (Dramatiq's options or
    Celery's headers)."""
    carriers = [letter.options.get(semconv.CONTEXT_OPTION), letter.options]
    for carrier in carriers:
        if isinstance(carrier, dict) and isinstance(carrier.get(TRACEPARENT), str):
            parts = carrier[TRACEPARENT].split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return parts[1]
    return None


def _ago(seconds: float | None) -> str:
    return "?" if seconds is None else f"{age(max(0.0, seconds))} ago"


def _last_line(letter: DeadLetter) -> str:
    lines = (letter.traceback or "").strip().splitlines()
    return lines[-1] if lines else ""


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(timestamp))
