"""The queues an application declares, found by importing it: a Dramatiq broker module or a
Celery app.

``--app myapp.tasks`` works as ``dramatiq myapp.tasks`` and ``celery -A myapp`` do: the module is
imported (from the current directory too). When it holds a Celery app (``app`` or ``celery``, as
``celery -A`` looks for, or the variable named by ``myapp:app``), its queues are the app's
``task_queues``, ``task_default_queue`` and the queues its ``task_routes`` name, with its
``broker_transport_options`` (priority steps, key prefix, visibility timeout) and its broker URL.
Otherwise importing declared its Dramatiq actors, and so their queues, on the broker it set up;
``myapp.tasks:broker`` names the broker variable when it is not the global one.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from tasklens import semconv
from tasklens.brokers.base import BrokerError

__all__ = ["CELERY_APP_NAMES", "AppNotFound", "AppQueues", "load_app_queues", "load_celery_app"]

#: Module attributes holding a Celery app, in the order ``celery -A module`` looks for them.
CELERY_APP_NAMES = ("app", "celery")
#: Queue argument naming the exchange RabbitMQ dead-letters a queue's messages to.
DEAD_LETTER_EXCHANGE_ARGUMENT = "x-dead-letter-exchange"
#: Queue argument naming the routing key they are dead-lettered with.
DEAD_LETTER_ROUTING_KEY_ARGUMENT = "x-dead-letter-routing-key"


class AppNotFound(BrokerError):
    """The application module (or its broker or app) could not be imported."""


@dataclass(frozen=True)
class AppQueues:
    """What an application tells about its broker.

    Parameters:
      queues(tuple[str, ...]): The canonical names of the queues it declared, sorted.
      namespace(str|None): The Redis key namespace of its broker, when it is a Dramatiq Redis broker.
      library(str): ``dramatiq`` or ``celery``.
      broker_url(str|None): The Celery app's broker URL, when it sets one.
      transport_options(dict): The Celery app's ``broker_transport_options``.
      dead_letter_queues(dict[str, str]): For a Celery queue declared with a dead-letter exchange,
        the queue of the app bound to that exchange that receives its dead letters.
    """

    queues: tuple[str, ...]
    namespace: str | None = None
    library: str = semconv.MESSAGING_SYSTEM_DRAMATIQ
    broker_url: str | None = None
    transport_options: dict[str, Any] = field(default_factory=dict)
    dead_letter_queues: dict[str, str] = field(default_factory=dict)


def load_app_queues(app: str) -> AppQueues:
    """Import ``module`` or ``module:variable`` and read its Celery app's or Dramatiq broker's queues.

    Parameters:
      app(str): A module path such as ``myapp.tasks``, optionally ``:variable``.

    Raises:
      AppNotFound: when the module or the variable cannot be loaded.
    """
    module, variable = _import_app_module(app)
    celery_app = _celery_app(module, variable)
    if celery_app is not None:
        return _celery_queues(celery_app)
    try:
        import dramatiq
    except ImportError:
        raise AppNotFound(
            f"{app!r} holds no Celery app and reading a Dramatiq app needs Dramatiq: pip install dramatiq"
        ) from None
    if variable:
        broker = getattr(module, variable, None)
        if not isinstance(broker, dramatiq.Broker):
            raise AppNotFound(
                f"{app!r} is neither a Celery app nor a Dramatiq broker: name the variable holding one"
            )
    else:
        broker = dramatiq.get_broker()
    queues = tuple(sorted(q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))))
    namespace = getattr(broker, "namespace", None)
    return AppQueues(queues=queues, namespace=namespace if isinstance(namespace, str) else None)


def load_celery_app(app: str) -> Any:
    """The Celery app object ``module`` or ``module:variable`` holds.

    Raises:
      AppNotFound: when the module cannot be imported or holds no Celery app.
    """
    module, variable = _import_app_module(app)
    celery_app = _celery_app(module, variable)
    if celery_app is None:
        raise AppNotFound(f"{app!r} holds no Celery app")
    return celery_app


def _import_app_module(app: str) -> tuple[ModuleType, str]:
    module_name, _, variable = app.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name), variable
    except Exception as e:
        raise AppNotFound(f"cannot import app module {module_name!r}: {type(e).__name__}: {e}") from None


def _celery_app(module: ModuleType, variable: str) -> Any:
    """The Celery app the module holds (``None`` when Celery was not even imported by it)."""
    celery = sys.modules.get("celery")
    if celery is None:
        return None
    names = (variable,) if variable else CELERY_APP_NAMES
    for name in names:
        candidate = getattr(module, name, None)
        if isinstance(candidate, celery.Celery):
            return candidate
    return None


def _celery_queues(app: Any) -> AppQueues:
    conf = app.conf
    declared = list(conf.task_queues or ())
    names = {str(queue.name) for queue in declared}
    names.add(str(conf.task_default_queue))
    routes = conf.task_routes
    if isinstance(routes, Mapping):
        names.update(str(r["queue"]) for r in routes.values() if isinstance(r, Mapping) and r.get("queue"))
    options = conf.broker_transport_options
    return AppQueues(
        queues=tuple(sorted(names)),
        library=semconv.MESSAGING_SYSTEM_CELERY,
        broker_url=conf.broker_url or None,
        transport_options=dict(options) if isinstance(options, Mapping) else {},
        dead_letter_queues=_dead_letter_queues(declared),
    )


def _dead_letter_queues(declared: list[Any]) -> dict[str, str]:
    """Each queue with a dead-letter exchange -> the declared queue bound to that exchange with the
    routing key its dead letters carry (any, for a fanout exchange)."""
    found: dict[str, str] = {}
    for queue in declared:
        arguments = queue.queue_arguments or {}
        exchange = arguments.get(DEAD_LETTER_EXCHANGE_ARGUMENT)
        if not exchange:
            continue
        routing_key = arguments.get(DEAD_LETTER_ROUTING_KEY_ARGUMENT) or queue.routing_key or queue.name
        for candidate in declared:
            bound = candidate.exchange
            if candidate is queue or bound is None or bound.name != exchange:
                continue
            if bound.type == "fanout" or (candidate.routing_key or candidate.name) == routing_key:
                found[str(queue.name)] = str(candidate.name)
                break
    return found
