"""Options the broker commands share, and how they report a broker that fails them.

Every command that reads a broker takes ``--broker`` (or ``TASKLENS_BROKER_URL``), ``--app``,
``--queue``, ``--library``, ``--transport-option``, ``--ping-workers``,
``--rabbitmq-management-url`` and ``--timeout``. A broker that does not answer is
reported on one line naming its redacted URL, and the command exits with status 2.

``--broker`` and ``--app`` may be repeated to read several brokers as one (Dramatiq's and
Celery's): each ``--broker`` is ``URL`` or ``LIBRARY=URL`` (``celery=redis://...``), each
``--app`` names its broker (a Celery app's ``broker_url``; a Dramatiq broker module, which names
none, takes the next ``--broker`` without a library of its own). With several brokers,
``--library`` says which library's queue a queue name both libraries use means (``dlq``,
``queues --queue``); each broker's own library comes from ``LIBRARY=URL``, its app, or detection.
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
    AmbiguousQueue,
    BrokerError,
    BrokerInspector,
    BrokerSnapshot,
    BrokerUnavailable,
    MessageNotFound,
    QueueNotFound,
    QueueStats,
)
from tasklens.brokers.payload import canonical_queue_name
from tasklens.brokers.url import check_broker_url, redact_url
from tasklens.monitor.settings import (
    BROKER_URL_ENV,
    DEFAULT_BROKER_TIMEOUT,
    DEFAULT_BROKER_URL,
    BrokerSpec,
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
#: Exit status of a usage error (click's own).
EXIT_USAGE = 2

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
      brokers(tuple[BrokerSpec, ...]): Several brokers read as one, when ``--broker``/``--app``
        are repeated (``url``, ``app`` and ``library`` are then the first one's).
      queue_library(str|None): ``--library``: which library's queue a name means, when brokers of
        both libraries have a queue of that name.
    """

    url: str
    app: str | None
    queues: tuple[str, ...]
    management_url: str | None
    timeout: float
    library: str | None = None
    transport_options: dict[str, Any] = field(default_factory=dict)
    ping_workers: bool = False
    brokers: tuple[BrokerSpec, ...] = ()
    queue_library: str | None = None

    @property
    def redacted(self) -> str:
        """The URL (every URL, with several brokers) as it may be shown."""
        if self.brokers:
            return ", ".join(redact_url(spec.url) for spec in self.brokers)
        return redact_url(self.url)

    def open(self) -> BrokerInspector:
        """Open the inspector (nothing is read yet): a ``CompositeInspector`` for several
        brokers. Raises BrokerError."""
        if not self.brokers:
            return self._open_one(BrokerSpec(self.url, self.app, self.library))
        from tasklens.brokers.composite import CompositeInspector, CompositeMember

        for spec in self.brokers:  # every URL and app is checked before anything is read
            self._open_one(spec).close()
        members = [
            CompositeMember(spec.url, functools.partial(self._open_one, spec), library=spec.library)
            for spec in self.brokers
        ]
        return CompositeInspector(members, timeout=self.timeout)

    def _open_one(self, spec: BrokerSpec) -> BrokerInspector:
        from tasklens.brokers import open_broker

        check_broker_url(spec.url)
        return open_broker(
            spec.url,
            queues=self.queues,
            app=spec.app,
            management_url=self.management_url,
            timeout=self.timeout,
            library=spec.library,
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


#: The task libraries a ``--broker LIBRARY=URL`` may name.
BROKER_LIBRARIES = ("celery", "dramatiq")


def _broker_value(value: str) -> tuple[str, str | None]:
    """``URL`` or ``LIBRARY=URL`` as (URL, library or None)."""
    head, equals, rest = value.partition("=")
    if equals and "://" not in head:
        if head not in BROKER_LIBRARIES:
            raise click.BadParameter(
                f"{head!r} is not a task library: use URL or LIBRARY=URL, LIBRARY one of "
                f"{', '.join(BROKER_LIBRARIES)} (like celery=redis://127.0.0.1:6379/0)",
                param_hint="'--broker'",
            )
        if not rest:
            raise click.BadParameter(f"{value!r} names no URL after {head}=", param_hint="'--broker'")
        return rest, head
    return value, None


def broker_specs(brokers: tuple[str, ...], apps: tuple[str, ...]) -> tuple[BrokerSpec, ...]:
    """The brokers that repeated ``--broker``/``--app`` name (empty for one broker, read as ever).

    Each Celery ``--app`` reads the broker its ``broker_url`` names; a Dramatiq ``--app`` (a broker
    module, which names no URL) takes the next ``--broker`` without a library of its own; every
    other ``--broker`` is a broker of its own, its library from ``LIBRARY=``, else detected
    (``--library`` then chooses a queue's library, not a broker's layout).

    Parameters:
      brokers(tuple[str, ...]): The ``--broker`` values, ``URL`` or ``LIBRARY=URL``.
      apps(tuple[str, ...]): The ``--app`` values.

    Raises:
      click.BadParameter: for a value that is not ``URL`` or ``LIBRARY=URL``, a Dramatiq app left
        without a URL, or a broker given twice.
    """
    parsed = [_broker_value(value) for value in brokers]
    if len(parsed) <= 1 and len(apps) <= 1:
        return ()
    from tasklens.brokers.app import load_app_queues

    specs: list[BrokerSpec] = []
    free = [(url, own) for url, own in parsed]
    for app in apps:
        try:
            declared = load_app_queues(app)
        except BrokerError as exc:
            fail(str(exc), EXIT_UNREACHABLE)
        if declared.broker_url:
            specs.append(BrokerSpec(declared.broker_url, app, declared.library))
            continue
        match = next((i for i, (_, own) in enumerate(free) if own in (None, declared.library)), None)
        if match is None:
            raise click.BadParameter(
                f"{app!r} is a {declared.library} broker module and names no broker URL: give its URL "
                "with one more --broker",
                param_hint="'--app'",
            )
        url, _ = free.pop(match)
        specs.append(BrokerSpec(url, app, declared.library))
    specs.extend(BrokerSpec(url, None, own) for url, own in free)
    seen: set[BrokerSpec] = set()
    for spec in specs:
        if spec in seen:
            raise click.BadParameter(f"{redact_url(spec.url)} is given twice", param_hint="'--broker'")
        seen.add(spec)
    return tuple(specs)


def broker_options(command: F) -> F:
    """Add the broker options to ``command``; it receives them as ``target: BrokerTarget``."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        broker: tuple[str, ...],
        app: tuple[str, ...],
        queues: tuple[str, ...],
        rabbitmq_management_url: str | None,
        timeout: float,
        library: str | None,
        transport_options: dict[str, Any],
        ping_workers: bool,
        **kwargs: Any,
    ) -> Any:
        try:
            several = broker_specs(broker, app)
        except click.BadParameter as exc:
            fail(exc.format_message(), EXIT_USAGE)
        if several:
            first = several[0]
            target = BrokerTarget(
                first.url,
                first.app,
                queues,
                rabbitmq_management_url,
                timeout,
                first.library,
                transport_options,
                ping_workers,
                brokers=several,
                queue_library=library,
            )
            return command(*args, target=target, **kwargs)
        given, own = _broker_value(broker[0]) if broker else (None, None)
        if own is not None and library is not None and own != library:
            fail(f"--broker says {own} and --library says {library}: give one", EXIT_USAGE)
        one_app = app[0] if app else None
        url = given or _app_broker_url(one_app) or DEFAULT_BROKER_URL
        target = BrokerTarget(
            url,
            one_app,
            queues,
            rabbitmq_management_url,
            timeout,
            own or library,
            transport_options,
            ping_workers,
            queue_library=own or library,
        )
        return command(*args, target=target, **kwargs)

    options = [
        click.option(
            "--broker",
            envvar=BROKER_URL_ENV,
            multiple=True,
            metavar="[LIBRARY=]URL",
            help=(
                f"Broker URL (redis://, rediss://, unix://, amqp://, amqps://); also {BROKER_URL_ENV}"
                " (several separated by spaces). Repeat to read several brokers as one; celery=URL or"
                " dramatiq=URL says whose layout it is."
                f"  [default: a Celery --app's broker_url, else {DEFAULT_BROKER_URL}]"
            ),
        ),
        click.option(
            "--app",
            multiple=True,
            metavar="MODULE",
            help="Import this Celery app (module, module:app) or Dramatiq broker module to learn its queues"
            " (repeatable: each Celery app's broker is read too).",
        ),
        click.option(
            "--library",
            type=click.Choice(["celery", "dramatiq"]),
            help="Which task library laid out the broker (default: from --app, else detected); with"
            " several brokers, which library's queue a name both libraries use means.",
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

    With several brokers, a name both libraries use is the queue of ``--library``.

    Raises:
      AmbiguousQueue: for a name both libraries use when ``--library`` does not choose.
    """
    if not target.queues:
        return snapshot
    wanted = list(dict.fromkeys(canonical_queue_name(name) for name in target.queues))
    chosen: list[QueueStats] = []
    for name in wanted:
        found = [
            stats
            for stats in snapshot.queues
            if stats.name == name and target.queue_library in (None, snapshot.system_of(stats))
        ]
        systems = sorted({snapshot.system_of(stats) for stats in found})
        if len(systems) > 1:
            raise AmbiguousQueue(name, systems)
        chosen.extend(found)
    return replace(snapshot, queues=chosen)


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
    known = {
        stats.name for stats in snapshot.queues if target.queue_library in (None, snapshot.system_of(stats))
    }
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
    except AmbiguousQueue as exc:
        fail(ambiguity(exc), EXIT_USAGE)
    except BrokerError as exc:
        message = str(exc)
        if target.redacted not in message:
            verb = "cannot reach" if isinstance(exc, BrokerUnavailable) else "cannot read"
            message = f"{verb} {target.redacted}: {message}"
        fail(message, EXIT_UNREACHABLE)


def ambiguity(error: AmbiguousQueue) -> str:
    """How a command says which options choose among the queues of one name."""
    if error.by == "broker":
        return (
            f"queue {error.queue!r} exists on {' and '.join(error.choices)}: give only the --broker"
            " that holds the one you mean"
        )
    return (
        f"queue {error.queue!r} exists in {' and '.join(error.choices)}: say which with --library "
        f"{'|'.join(error.choices)}"
    )


@contextmanager
def opened(target: BrokerTarget) -> Iterator[BrokerInspector]:
    """Open the target's inspector for the block, reporting broker errors as ``broker_errors``."""
    with broker_errors(target), target.open() as inspector:
        yield inspector
