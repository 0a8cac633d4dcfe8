"""Broker inspection: queue depth, delayed, in flight, dead letters, oldest age, workers, and
the dead-letter actions, for each broker layout behind one interface (``BrokerInspector``).

Example:

  >>> from tasklens.brokers import open_broker
  >>> with open_broker("redis://127.0.0.1:6379/0") as broker:
  ...     snapshot = broker.snapshot()
  ...     page = broker.dead_letters("default", limit=10)
  ...     broker.requeue_dead("default", [letter.message_id for letter in page.items])

``open_broker`` picks the implementation from the task library and the URL scheme: Dramatiq on
``redis://``, ``rediss://`` and ``unix://`` (``RedisInspector``), Dramatiq on ``amqp://`` and
``amqps://`` (``RabbitmqInspector``, which needs ``pip install tasklens[rabbitmq]``), Celery on
Redis (``CeleryRedisInspector``, kombu's layout) and Celery on RabbitMQ
(``CeleryRabbitmqInspector``). The library comes from ``library``, the app, a Dramatiq
``?namespace=``, or is detected from the broker (``tasklens.brokers.detect``). Several brokers
(Dramatiq's and Celery's, say) are read as one by ``CompositeInspector``
(``tasklens.brokers.composite``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tasklens import semconv
from tasklens.brokers.app import AppNotFound, AppQueues, load_app_queues
from tasklens.brokers.base import (
    AmbiguousQueue,
    BrokerError,
    BrokerInspector,
    BrokerPart,
    BrokerSnapshot,
    BrokerUnavailable,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
    QueueStats,
)
from tasklens.brokers.composite import CompositeInspector, CompositeMember
from tasklens.brokers.detect import LIBRARIES, AmbiguousBroker, DetectedInspector, detect_library
from tasklens.brokers.url import redact_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "LIBRARIES",
    "RABBITMQ_SCHEMES",
    "REDIS_SCHEMES",
    "AmbiguousBroker",
    "AmbiguousQueue",
    "AppNotFound",
    "AppQueues",
    "BrokerError",
    "BrokerInspector",
    "BrokerPart",
    "BrokerSnapshot",
    "BrokerUnavailable",
    "CompositeInspector",
    "CompositeMember",
    "DeadLetter",
    "DeadLetterPage",
    "MessageNotFound",
    "Progress",
    "QueueNotFound",
    "QueueStats",
    "UnsupportedBroker",
    "load_app_queues",
    "open_broker",
    "redact_url",
]

#: Connect and command timeout of every broker call, in seconds.
DEFAULT_TIMEOUT = 5.0
#: URL schemes read as Dramatiq on Redis.
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
#: URL schemes read as Dramatiq on RabbitMQ.
RABBITMQ_SCHEMES = frozenset({"amqp", "amqps"})
#: The Redis URL query parameter naming Dramatiq's namespace: such a URL is Dramatiq's.
NAMESPACE_PARAMETER = "namespace"
#: Dramatiq's default Redis namespace.
DEFAULT_NAMESPACE = "dramatiq"


class UnsupportedBroker(BrokerError):
    """The broker URL's scheme is not one tasklens can read."""


def open_broker(
    url: str,
    *,
    queues: Sequence[str] = (),
    app: str | None = None,
    management_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    namespace: str | None = None,
    library: str | None = None,
    transport_options: Mapping[str, Any] | None = None,
    ping_workers: bool = False,
) -> BrokerInspector:
    """The inspector for the broker at ``url``. Nothing is read until it is used.

    Parameters:
      url(str): ``redis://``, ``rediss://``, ``unix://``, ``amqp://`` or ``amqps://`` URL.
      queues(Sequence[str]): Queue names to report (Redis: even when empty; RabbitMQ: the queues
        to read).
      app(str|None): A Dramatiq application module (``myapp.tasks`` or ``myapp.tasks:broker``)
        or a Celery app (``myapp`` holding ``app``/``celery``, or ``myapp:app``), whose declared
        queues are reported; on Redis the Dramatiq broker's namespace or the Celery app's
        transport options are used too.
      management_url(str|None): RabbitMQ management API (``http://user:pw@host:15672``), which
        adds in-flight counts and queue discovery.
      timeout(float): Connect and command timeout, in seconds.
      namespace(str|None): Dramatiq's Redis key namespace (else the URL's ``?namespace=``, the
        app's, or ``dramatiq``).
      library(str|None): ``dramatiq`` or ``celery``; by default from the app, else detected
        from the broker on first use (see ``tasklens.brokers.detect``).
      transport_options(Mapping|None): Celery's ``broker_transport_options`` (``priority_steps``,
        ``sep``, ``global_keyprefix``, ``visibility_timeout``); over the app's.
      ping_workers(bool): Celery: when no worker heart-beats, count those answering ``inspect ping``.

    Raises:
      UnsupportedBroker: for any other scheme or library.
      AppNotFound: when ``app`` cannot be imported.
      BrokerError: when RabbitMQ is given no way to know Dramatiq's queues.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in REDIS_SCHEMES | RABBITMQ_SCHEMES:
        raise UnsupportedBroker(
            f"unsupported broker URL {redact_url(url)}: use redis://, rediss://, unix:// (Redis) "
            "or amqp://, amqps:// (RabbitMQ)"
        )
    if library is not None and library not in LIBRARIES:
        raise UnsupportedBroker(f"unknown task library {library!r}: use one of {', '.join(LIBRARIES)}")
    declared = load_app_queues(app) if app else None
    if declared is not None:
        if library is not None and library != declared.library:
            raise UnsupportedBroker(f"--app {app!r} is a {declared.library} app, not {library}")
        library = declared.library
    # A Dramatiq namespace, given or in the URL, says whose layout it is.
    has_namespace = namespace is not None or NAMESPACE_PARAMETER in parse_qs(urlsplit(url).query)
    if library is None and scheme in REDIS_SCHEMES and has_namespace:
        library = semconv.MESSAGING_SYSTEM_DRAMATIQ
    options = {**(declared.transport_options if declared else {}), **(transport_options or {})}
    names = [*queues, *(declared.queues if declared else ())]

    def open_for(chosen: str) -> BrokerInspector:
        if chosen == semconv.MESSAGING_SYSTEM_CELERY:
            return _open_celery(url, scheme, names, declared, management_url, timeout, options, ping_workers)
        return _open_dramatiq(url, scheme, names, declared, management_url, timeout, namespace)

    if library is not None:
        return open_for(library)
    keyprefix = str(options.get("global_keyprefix", ""))

    def detect() -> str:
        return detect_library(
            url, queues=names, timeout=timeout, namespace=namespace or DEFAULT_NAMESPACE, keyprefix=keyprefix
        )

    return DetectedInspector(url, detect, open_for)


def _open_dramatiq(
    url: str,
    scheme: str,
    names: list[str],
    declared: AppQueues | None,
    management_url: str | None,
    timeout: float,
    namespace: str | None,
) -> BrokerInspector:
    if scheme in REDIS_SCHEMES:
        from tasklens.brokers.redis import RedisInspector

        # An explicit namespace wins, then the URL's (read by the inspector), then the app's.
        url_has_namespace = NAMESPACE_PARAMETER in parse_qs(urlsplit(url).query)
        if namespace is None and declared is not None and declared.namespace and not url_has_namespace:
            namespace = declared.namespace
        return RedisInspector(url, namespace=namespace, queues=names, timeout=timeout)
    return _rabbitmq_module(url).RabbitmqInspector(
        url, queues=names, management_url=management_url, timeout=timeout
    )


def _open_celery(
    url: str,
    scheme: str,
    names: list[str],
    declared: AppQueues | None,
    management_url: str | None,
    timeout: float,
    options: dict[str, Any],
    ping_workers: bool,
) -> BrokerInspector:
    workers = _heartbeat_listener(url, options, timeout, ping_workers)
    if scheme in REDIS_SCHEMES:
        from tasklens.brokers.celery_redis import CeleryRedisInspector, KombuRedisOptions

        try:
            kombu_options = KombuRedisOptions.from_transport_options(options)
        except ValueError as e:
            raise UnsupportedBroker(f"invalid Celery transport options: {e}") from None
        return CeleryRedisInspector(
            url, queues=names, options=kombu_options, timeout=timeout, workers=workers
        )
    _rabbitmq_module(url)
    from tasklens.brokers.celery_rabbitmq import CeleryRabbitmqInspector

    return CeleryRabbitmqInspector(
        url,
        queues=names,
        management_url=management_url,
        dead_letter_queues=declared.dead_letter_queues if declared else None,
        timeout=timeout,
        workers=workers,
    )


def _heartbeat_listener(url: str, options: dict[str, Any], timeout: float, ping: bool) -> Any:
    """The Celery worker listener, or ``None`` when Celery is not installed (workers unknown)."""
    try:
        import celery  # noqa: F401
    except ImportError:
        return None
    from tasklens.brokers.celery_workers import HeartbeatListener

    return HeartbeatListener(url, transport_options=options, timeout=timeout, ping=ping)


def _rabbitmq_module(url: str) -> Any:
    try:
        from tasklens.brokers import rabbitmq
    except ImportError as e:
        raise UnsupportedBroker(
            f"reading {redact_url(url)} needs the RabbitMQ client: pip install 'tasklens[rabbitmq]' ({e})"
        ) from None
    return rabbitmq
