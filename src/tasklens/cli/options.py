"""Options the broker commands share, and how they report a broker that fails them.

Every command that reads a broker takes ``--broker`` (or ``TASKLENS_BROKER_URL``), ``--app``,
``--queue``, ``--library``, ``--transport-option``, ``--ping-workers``,
``--rabbitmq-management-url`` and ``--timeout``. A broker that does not answer is
reported on one line naming its redacted URL, and the command exits with status 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import click

from tasklens.brokers.base import (
    BrokerError,
    BrokerInspector,
    BrokerUnavailable,
    MessageNotFound,
    QueueNotFound,
)
from tasklens.brokers.url import redact_url
from tasklens.monitor.settings import (
    BROKER_URL_ENV,
    DEFAULT_BROKER_TIMEOUT,
    DEFAULT_BROKER_URL,
    HealthThresholds,
)

__all__ = [
    "EXIT_NOT_FOUND",
    "EXIT_UNREACHABLE",
    "BrokerTarget",
    "broker_errors",
    "broker_options",
    "fail",
    "opened",
    "threshold_options",
]

#: Exit status when the broker cannot be read (unreachable, unsupported URL, app not importable).
EXIT_UNREACHABLE = 2
#: Exit status when the queue or message named does not exist.
EXIT_NOT_FOUND = 1

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class BrokerTarget:
    """Which broker a command reads, from its options.

    Parameters:
      url(str): The broker URL (may hold a password; only ``redacted`` is shown).
      app(str|None): Application module whose declared queues are read.
      queues(tuple[str, ...]): Queue names to read besides those discovered.
      management_url(str|None): RabbitMQ management API URL.
      timeout(float): Connect and command timeout, in seconds.
      library(str|None): ``dramatiq`` or ``celery``; detected when ``None``.
      transport_options(dict): Celery's ``broker_transport_options`` (over the app's).
      ping_workers(bool): Celery: count workers answering ``inspect ping`` when none heart-beats.
    """

    url: str
    app: str | None
    queues: tuple[str, ...]
    management_url: str | None
    timeout: float
    library: str | None = None
    transport_options: dict[str, Any] = field(default_factory=dict)
    ping_workers: bool = False

    @property
    def redacted(self) -> str:
        """The URL as it may be shown."""
        return redact_url(self.url)

    def open(self) -> BrokerInspector:
        """Open the inspector (nothing is read yet). Raises BrokerError."""
        from tasklens.brokers import open_broker

        return open_broker(
            self.url,
            queues=self.queues,
            app=self.app,
            management_url=self.management_url,
            timeout=self.timeout,
            library=self.library,
            transport_options=self.transport_options,
            ping_workers=self.ping_workers,
        )


def _transport_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each VALUE read as JSON when it is (``priority_steps=[0,5,9]``)."""
    options: dict[str, Any] = {}
    for value in values:
        key, equals, raw = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r}: use KEY=VALUE, like global_keyprefix=myapp:")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return options


def _app_broker_url(app: str | None) -> str | None:
    """The broker URL a Celery app names, when ``--app`` is one and ``--broker`` is not given."""
    if not app:
        return None
    from tasklens.brokers.app import load_app_queues

    try:
        return load_app_queues(app).broker_url
    except BrokerError as exc:
        fail(str(exc), EXIT_UNREACHABLE)


def broker_options(command: F) -> F:
    """Add the broker options to ``command``; it receives them as ``target: BrokerTarget``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        broker: str | None,
        app: str | None,
        queues: tuple[str, ...],
        rabbitmq_management_url: str | None,
        timeout: float,
        library: str | None,
        transport_options: dict[str, Any],
        ping_workers: bool,
        **kwargs: Any,
    ) -> Any:
        url = broker or _app_broker_url(app) or DEFAULT_BROKER_URL
        target = BrokerTarget(
            url, app, queues, rabbitmq_management_url, timeout, library, transport_options, ping_workers
        )
        return command(*args, target=target, **kwargs)

    options = [
        click.option(
            "--broker",
            envvar=BROKER_URL_ENV,
            metavar="URL",
            help=(
                f"Broker URL (redis://, rediss://, unix://, amqp://, amqps://); also {BROKER_URL_ENV}."
                f"  [default: a Celery --app's broker_url, else {DEFAULT_BROKER_URL}]"
            ),
        ),
        click.option(
            "--app",
            metavar="MODULE",
            help="Import this Celery app (module, module:app) or Dramatiq broker module to learn its queues.",
        ),
        click.option(
            "--library",
            type=click.Choice(["celery", "dramatiq"]),
            help="Which task library laid out the broker (default: from --app, else detected).",
        ),
        click.option(
            "--transport-option",
            "transport_options",
            multiple=True,
            metavar="KEY=VALUE",
            callback=_transport_options,
            help="A Celery broker_transport_options entry, e.g. global_keyprefix=myapp: (repeatable).",
        ),
        click.option(
            "--ping-workers",
            is_flag=True,
            help="Celery: when no worker heart-beats (events disabled), count those answering inspect ping.",
        ),
        click.option(
            "--queue", "queues", multiple=True, metavar="NAME", help="A queue to read (repeatable)."
        ),
        click.option(
            "--rabbitmq-management-url",
            metavar="URL",
            help="RabbitMQ management API (http://user:pass@host:15672): discovery, in-flight counts.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0.1),
            default=DEFAULT_BROKER_TIMEOUT,
            show_default=True,
            help="Connect and command timeout, in seconds.",
        ),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def threshold_options(command: F) -> F:
    """Add ``--max-backlog``, ``--max-age`` and ``--min-workers``; the command receives them as
    ``thresholds: HealthThresholds``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any, max_backlog: int | None, max_age: float | None, min_workers: int | None, **kwargs: Any
    ) -> Any:
        thresholds = HealthThresholds(max_backlog=max_backlog, max_age=max_age, min_workers=min_workers)
        return command(*args, thresholds=thresholds, **kwargs)

    options = [
        click.option(
            "--max-backlog",
            type=click.IntRange(min=0),
            metavar="N",
            help="Degraded when a queue holds more pending (ready + delayed) messages.",
        ),
        click.option(
            "--max-age",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Degraded when a queue's oldest ready message is older.",
        ),
        click.option(
            "--min-workers", type=click.IntRange(min=0), metavar="N", help="Degraded with fewer live workers."
        ),
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def fail(message: str, status: int) -> NoReturn:
    """Print ``message`` on one line to stderr and exit with ``status``.

    Parameters:
      message(str): What went wrong, without credentials.
      status(int): The exit status.
    """
    click.echo(f"tasklens: {' '.join(message.split())}", err=True)
    sys.exit(status)


@contextmanager
def broker_errors(target: BrokerTarget) -> Iterator[None]:
    """Turn broker errors raised in the block into one line on stderr and an exit status:
    2 when the broker cannot be read, 1 when a queue or message is not found."""
    try:
        yield
    except (QueueNotFound, MessageNotFound) as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except BrokerError as exc:
        message = str(exc)
        if target.redacted not in message:
            verb = "cannot reach" if isinstance(exc, BrokerUnavailable) else "cannot read"
            message = f"{verb} {target.redacted}: {message}"
        fail(message, EXIT_UNREACHABLE)


@contextmanager
def opened(target: BrokerTarget) -> Iterator[BrokerInspector]:
    """Open the target's inspector for the block, reporting broker errors as ``broker_errors``."""
    with broker_errors(target), target.open() as inspector:
        yield inspector
