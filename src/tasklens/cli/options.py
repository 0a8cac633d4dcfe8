"""Options the broker commands share, and how they report a broker that fails them.

Every command that reads a broker takes ``--broker`` (or ``TASKLENS_BROKER_URL``), ``--app``,
``--queue``, ``--library``, ``--transport-option``, ``--ping-workers``,
``--rabbitmq-management-url`` and ``--timeout``. A broker that does not answer is
reported on one line naming its redacted URL, and the command exits with status 2.
"""

from __future__ import annotations

import functools
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

import click

from tasklens.brokers.base import (
    BrokerError,
    BrokerInspector,
    BrokerSnapshot,
    BrokerUnavailable,
    MessageNotFound,
    QueueNotFound,
)
from tasklens.brokers.payload import canonical_queue_name
from tasklens.brokers.url import check_broker_url, redact_url
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
    "narrowed",
    "opened",
    "read_snapshot",
    "threshold_options",
]

#: Exit status when the broker cannot be read (unreachable, unsupported URL, app not importable).
EXIT_UNREACHABLE = 2
#: Exit status when the queue or message named does not exist.
EXIT_NOT_FOUND = 1

F = TypeVar("F", bound=Callable[..., Any])

#: Longest ``--timeout``, in seconds.
MAX_TIMEOUT = 300.0
#: Largest count a threshold may give (a 64-bit integer).
MAX_COUNT = 2**63 - 1
#: Longest age a threshold may give, in seconds (ten years).
MAX_AGE = 10 * 365 * 86400.0


class BoundedFloat(click.FloatRange):
    """A number within ``[min, max]``: ``nan`` and ``inf``, which ``float()`` reads, are refused.

    Parameters:
      min(float): Smallest value.
      max(float): Largest value.
    """

    def __init__(self, min: float, max: float) -> None:
        super().__init__(min=min, max=max)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


@dataclass(frozen=True)
class BrokerTarget:
    """Which broker a command reads, from its options.

    Parameters:
      url(str): The broker URL (may hold a password; only ``redacted`` is shown).
      app(str|None): Application module whose declared queues are read.
      queues(tuple[str, ...]): The queues to read (every queue found when empty).
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

        check_broker_url(self.url)
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
            "--queue",
            "queues",
            multiple=True,
            metavar="NAME",
            help="Read only this queue (repeatable); a queue the broker does not have is an error.",
        ),
        click.option(
            "--rabbitmq-management-url",
            metavar="URL",
            help="RabbitMQ management API (http://user:pass@host:15672): discovery, in-flight counts.",
        ),
        click.option(
            "--timeout",
            type=BoundedFloat(0.1, MAX_TIMEOUT),
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
    """Add ``--max-backlog``, ``--max-age``, ``--min-workers`` and ``--max-dead``; the command
    receives them as ``thresholds: HealthThresholds``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        max_backlog: int | None,
        max_age: float | None,
        min_workers: int | None,
        max_dead: int | None,
        **kwargs: Any,
    ) -> Any:
        thresholds = HealthThresholds(
            max_backlog=max_backlog, max_age=max_age, min_workers=min_workers, max_dead=max_dead
        )
        return command(*args, thresholds=thresholds, **kwargs)

    options = [
        click.option(
            "--max-backlog",
            type=click.IntRange(0, MAX_COUNT),
            metavar="N",
            help="Degraded when a queue holds more pending (ready + delayed) messages.",
        ),
        click.option(
            "--max-age",
            type=BoundedFloat(0, MAX_AGE),
            metavar="SECONDS",
            help="Degraded when a queue's oldest ready message is older.",
        ),
        click.option(
            "--min-workers",
            type=click.IntRange(0, MAX_COUNT),
            metavar="N",
            help="Degraded with fewer live workers.",
        ),
        click.option(
            "--max-dead",
            type=click.IntRange(0, MAX_COUNT),
            metavar="N",
            help="Degraded when a queue holds more dead letters.",
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


def narrowed(snapshot: BrokerSnapshot, target: BrokerTarget) -> BrokerSnapshot:
    """The snapshot's queues named by ``--queue``, in the order given; all of them without it.

    Parameters:
      snapshot(BrokerSnapshot): What was read.
      target(BrokerTarget): The command's broker options.
    """
    if not target.queues:
        return snapshot
    wanted = list(dict.fromkeys(canonical_queue_name(name) for name in target.queues))
    by_name = {stats.name: stats for stats in snapshot.queues}
    return replace(snapshot, queues=[by_name[name] for name in wanted if name in by_name])


def read_snapshot(target: BrokerTarget) -> BrokerSnapshot:
    """Read the broker once: every queue it has, or only those ``--queue`` names.

    A named queue is looked for among those the broker has (so a typo is not shown as an empty
    queue); where the broker cannot list its queues (RabbitMQ over AMQP alone) the names are
    read as given.

    Parameters:
      target(BrokerTarget): The command's broker options.

    Raises:
      QueueNotFound: when a queue named by ``--queue`` is not on the broker.
      BrokerError: when the broker cannot be read.
    """
    if not target.queues:
        with target.open() as inspector:
            return inspector.snapshot()
    if target.library is None and target.app is None:
        # Which library laid the broker out is told by the named queues, not by whatever else
        # the broker holds: read them once to know, then list every queue of that layout.
        with target.open() as named:
            target = replace(target, library=named.snapshot().messaging_system)
    try:
        inspector = replace(target, queues=()).open()
    except BrokerError as exc:
        if not _cannot_list_queues(exc):
            raise
        with target.open() as named:
            return narrowed(named.snapshot(), target)
    with inspector:
        snapshot = inspector.snapshot()
    known = {stats.name for stats in snapshot.queues}
    missing = [name for name in dict.fromkeys(map(canonical_queue_name, target.queues)) if name not in known]
    if missing:
        listed = ", ".join(sorted(known)[:10]) or "none"
        raise QueueNotFound(f"no queue {missing[0]!r} on {target.redacted} (queues: {listed})")
    return narrowed(snapshot, target)


def _cannot_list_queues(error: BrokerError) -> bool:
    try:
        from tasklens.brokers.rabbitmq import NoQueuesKnown
    except ImportError:  # without pika there is no RabbitMQ inspector to refuse
        return False
    return isinstance(error, NoQueuesKnown)


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
