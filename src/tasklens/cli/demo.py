"""``tasklens demo``."""

from __future__ import annotations

import sys

import click

__all__ = ["demo"]

#: The dashboard's port unless ``--port`` says otherwise.
DEFAULT_DEMO_PORT = 9191


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_DEMO_PORT,
    show_default=True,
    help="The dashboard's port (0: any free port).",
)
@click.option("--no-redis", is_flag=True, help="Use the in-process broker even when Redis answers.")
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    help="Stop after this many seconds instead of waiting for Ctrl-C.",
)
@click.option(
    "--trace-tree",
    is_flag=True,
    help="Instead of the dashboard: send three requests' work once and print each trace as a tree.",
)
def demo(port: int, no_redis: bool, duration: float | None, trace_tree: bool) -> None:
    """Run a web shop, its worker and the tasklens dashboard, with live traffic.

    The monitor (with its telemetry store), an instrumented web app and a Dramatiq worker run in
    this process: the app's endpoints enqueue welcome emails, payments that sometimes fail and
    retry, slow reports, a fetch-transform-store pipeline, a fan-out group with a callback,
    delayed reminders and a flaky inventory sync that ends in the dead-letter queue. The work
    goes to the Redis at 127.0.0.1:6379 when one answers (in a namespace of its own, deleted on
    exit) and to an in-process broker otherwise. Open the printed URL; stop with Ctrl-C.

    Example: tasklens demo --port 9191
    """
    if trace_tree:
        from tasklens.demo.terminal import run_terminal_demo

        sys.exit(run_terminal_demo(prefer_redis=not no_redis))
    from tasklens.demo.dashboard import run_dashboard_demo

    try:
        sys.exit(run_dashboard_demo(port=port, prefer_redis=not no_redis, duration=duration))
    except OSError as error:  # the port is taken, most often
        raise click.ClickException(
            f"cannot start the demo on port {port}: {error.strerror or error}"
        ) from None
