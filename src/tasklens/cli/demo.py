"""``tasklens demo``."""

from __future__ import annotations

import sys

import click

__all__ = ["demo"]


@click.command()
@click.option("--no-redis", is_flag=True, help="Use the in-process broker even when Redis answers.")
def demo(no_redis: bool) -> None:
    """Run an instrumented web app and worker end to end and print the traces.

    A FastAPI endpoint enqueues a task that retries once, a delayed task and a three-step
    pipeline, on the Redis at 127.0.0.1:6379 when one answers (in a namespace of its own) and
    on an in-process broker otherwise; a worker runs them; each trace prints as a tree.

    Example: tasklens demo
    """
    from tasklens.demo.terminal import run_terminal_demo

    sys.exit(run_terminal_demo(prefer_redis=not no_redis))
