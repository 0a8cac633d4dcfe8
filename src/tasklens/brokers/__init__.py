"""Broker inspection: queue depth, delayed, in flight, dead letters, oldest age, workers, and
the dead-letter actions, for each broker layout behind one interface (``BrokerInspector``).

Example:

  >>> from tasklens.brokers import open_broker
  >>> with open_broker("redis://127.0.0.1:6379/0") as broker:
  ...     snapshot = broker.snapshot()
  ...     page = broker.dead_letters("default", limit=10)
  ...     broker.requeue_dead("default", [letter.message_id for letter in page.items])

``open_broker`` picks the implementation from the URL scheme: ``redis://``, ``rediss://`` and
``unix://`` read Dramatiq's Redis layout (``RedisInspector``); ``amqp://`` and ``amqps://`` its
RabbitMQ layout (``RabbitmqInspector``, which needs ``pip install tasklens[rabbitmq]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from tasklens.brokers.app import AppNotFound, AppQueues, load_app_queues
from tasklens.brokers.base import (
    BrokerError,
    BrokerInspector,
    BrokerSnapshot,
    BrokerUnavailable,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
    QueueStats,
)
from tasklens.brokers.url import redact_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "RABBITMQ_SCHEMES",
    "REDIS_SCHEMES",
    "AppNotFound",
    "AppQueues",
    "BrokerError",
    "BrokerInspector",
    "BrokerSnapshot",
    "BrokerUnavailable",
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
) -> BrokerInspector:
    """The inspector for the broker at ``url``. Nothing is read until it is used.

    Parameters:
      url(str): ``redis://``, ``rediss://``, ``unix://``, ``amqp://`` or ``amqps://`` URL.
      queues(Sequence[str]): Queue names to report (Redis: even when empty; RabbitMQ: the queues
        to read).
      app(str|None): A Dramatiq application module (``myapp.tasks`` or ``myapp.tasks:broker``)
        whose declared queues are reported; on Redis its broker's namespace is used too.
      management_url(str|None): RabbitMQ management API (``http://user:pw@host:15672``), which
        adds in-flight counts and queue discovery.
      timeout(float): Connect and command timeout, in seconds.
      namespace(str|None): Dramatiq's Redis key namespace (else the URL's ``?namespace=``, the
        app's, or ``dramatiq``).

    Raises:
      UnsupportedBroker: for any other scheme.
      AppNotFound: when ``app`` cannot be imported.
      BrokerError: when RabbitMQ is given no way to know its queues.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in REDIS_SCHEMES | RABBITMQ_SCHEMES:
        raise UnsupportedBroker(
            f"unsupported broker URL {redact_url(url)}: use redis://, rediss://, unix:// (Redis) "
            "or amqp://, amqps:// (RabbitMQ)"
        )
    names = list(queues)
    app_namespace = None
    if app:
        declared = load_app_queues(app)
        names.extend(declared.queues)
        app_namespace = declared.namespace
    if scheme in REDIS_SCHEMES:
        from tasklens.brokers.redis import RedisInspector

        # An explicit namespace wins, then the URL's (read by the inspector), then the app's.
        url_has_namespace = "namespace" in parse_qs(urlsplit(url).query)
        if namespace is None and app_namespace is not None and not url_has_namespace:
            namespace = app_namespace
        return RedisInspector(url, namespace=namespace, queues=names, timeout=timeout)
    try:
        from tasklens.brokers.rabbitmq import RabbitmqInspector
    except ImportError as e:
        raise UnsupportedBroker(
            f"reading {redact_url(url)} needs the RabbitMQ client: pip install 'tasklens[rabbitmq]' ({e})"
        ) from None
    return RabbitmqInspector(url, queues=names, management_url=management_url, timeout=timeout)
