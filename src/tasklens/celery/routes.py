"""The routes of Celery tasks (:class:`tasklens.messaging.routes.Route`) by app, queue and task,
and each app's broker address, computed once."""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

from tasklens import semconv
from tasklens.messaging.routes import Route

__all__ = ["Route", "RouteTable", "server_attributes"]

#: Kombu transports that live inside the process: they have no server to name.
IN_PROCESS_TRANSPORTS = frozenset({"memory", "filesystem"})


class RouteTable:
    """Routes by (app, queue, task), and each app's broker address, computed once."""

    def __init__(self) -> None:
        self._routes: dict[tuple[int, str, str], Route] = {}
        self._servers: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def route(self, app: Any, queue_name: str, task_name: str) -> Route:
        server = self.server(app)
        key = (id(server), queue_name, task_name)
        route = self._routes.get(key)
        if route is None:
            with self._lock:
                route = self._routes.setdefault(
                    key,
                    Route(
                        semconv.MESSAGING_SYSTEM_CELERY,
                        semconv.CELERY_TASK_NAME,
                        queue_name,
                        task_name,
                        server,
                    ),
                )
        return route

    def server(self, app: Any) -> dict[str, Any]:
        if app is None:
            return _NO_SERVER
        try:
            server = self._servers.get(app)
        except TypeError:  # an app that cannot be weakly referenced: no address
            return _NO_SERVER
        if server is None:
            server = server_attributes(app)
            with self._lock:
                server = self._servers.setdefault(app, server)
        return server


_NO_SERVER: dict[str, Any] = {}


def server_attributes(app: Any) -> dict[str, Any]:
    """``server.address``/``server.port`` of the app's broker (never credentials); empty for an
    in-process transport or when the broker URL cannot be read."""
    try:
        connection = app.connection_for_write()
    except Exception:
        return {}
    try:
        if connection.transport_cls in IN_PROCESS_TRANSPORTS:
            return {}
        attributes: dict[str, Any] = {}
        host, port = connection.hostname, connection.port
        if port is None:
            port = getattr(connection.transport, "default_port", None)
        if isinstance(host, str) and host:
            attributes[semconv.SERVER_ADDRESS] = host
        if isinstance(port, int):
            attributes[semconv.SERVER_PORT] = port
        return attributes
    except Exception:
        return {}
    finally:
        with contextlib.suppress(Exception):
            connection.release()
