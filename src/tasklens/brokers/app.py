"""The queues a Dramatiq application declares, found by importing its module.

``--app myapp.tasks`` works as ``dramatiq myapp.tasks`` does: the module is imported (from the
current directory too), which declares its actors and so their queues on the broker it set up;
``myapp.tasks:broker`` names the broker variable when it is not the global one.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

from tasklens.brokers.base import BrokerError

__all__ = ["AppNotFound", "AppQueues", "load_app_queues"]


class AppNotFound(BrokerError):
    """The application module (or its broker) could not be imported."""


@dataclass(frozen=True)
class AppQueues:
    """What an application tells about its broker.

    Parameters:
      queues(tuple[str, ...]): The canonical names of the queues it declared, sorted.
      namespace(str|None): The Redis key namespace of its broker, when it is a Redis broker.
    """

    queues: tuple[str, ...]
    namespace: str | None = None


def load_app_queues(app: str) -> AppQueues:
    """Import ``module`` or ``module:broker`` and read its broker's declared queues.

    Parameters:
      app(str): A module path such as ``myapp.tasks``, optionally ``:variable``.

    Raises:
      AppNotFound: when the module or the variable cannot be loaded.
    """
    module_name, _, variable = app.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        import dramatiq
    except ImportError:
        raise AppNotFound("reading queues from an app needs Dramatiq: pip install dramatiq") from None
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise AppNotFound(f"cannot import app module {module_name!r}: {type(e).__name__}: {e}") from None
    if variable:
        broker = getattr(module, variable, None)
        if not isinstance(broker, dramatiq.Broker):
            raise AppNotFound(f"{app!r} is not a Dramatiq broker: name the variable holding one")
    else:
        broker = dramatiq.get_broker()
    queues = tuple(sorted(q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))))
    namespace = getattr(broker, "namespace", None)
    return AppQueues(queues=queues, namespace=namespace if isinstance(namespace, str) else None)
