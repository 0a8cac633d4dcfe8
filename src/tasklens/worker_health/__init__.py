"""The worker's own liveness endpoint, for Kubernetes ``httpGet`` probes (opt-in).

Enabled by ``TASKLENS_WORKER_HEALTH=1`` or ``tasklens.setup(worker_health=True)`` (or a port
number), it serves ``GET /healthz`` on ``127.0.0.1:8099`` (``TASKLENS_WORKER_HEALTH_PORT``;
``TASKLENS_WORKER_HEALTH_HOST`` to listen beyond loopback) from a daemon thread of the worker
process: 200 and ``{"status": "healthy", ...}``, or 503 and ``"unhealthy"`` with the reasons. The
verdict comes from the process's own state, for Dramatiq (``dramatiq_probe``) and Celery
(``celery_probe``): threads or pool processes alive, the broker connection, the time since the
last message and heartbeat, and whether every worker slot is stuck on one message for longer than
``TASKLENS_WORKER_HEALTH_MAX_BUSY`` seconds (default 600). ``tasklens health --worker URL`` gives
the same verdict as an exec probe.

Kubernetes (the kubelet's ``httpGet`` connects to the pod's IP, hence the host; the exec probe
``tasklens health --worker http://127.0.0.1:8099`` works with the loopback default)::

    env:
      - {name: TASKLENS_WORKER_HEALTH, value: "1"}
      - {name: TASKLENS_WORKER_HEALTH_HOST, value: "0.0.0.0"}
    livenessProbe:
      httpGet: {path: /healthz, port: 8099}

With ``dramatiq --processes N`` one process listens and answers for all N: each publishes its
own verdict for it (see ``siblings``), so one hung process fails the probe.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
from dataclasses import dataclass

from tasklens.worker_health.server import WorkerHealthServer
from tasklens.worker_health.siblings import SiblingBoard

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BUSY",
    "DEFAULT_PORT",
    "ENABLE_ENV",
    "HOST_ENV",
    "MAX_BUSY_ENV",
    "PORT_ENV",
    "WorkerHealthSettings",
    "enable_worker_health",
    "start_worker_health",
]

logger = logging.getLogger(__name__)

#: Environment variable that turns the endpoint on ("1", "true" or "yes").
ENABLE_ENV = "TASKLENS_WORKER_HEALTH"
#: Environment variable naming the endpoint's port.
PORT_ENV = "TASKLENS_WORKER_HEALTH_PORT"
#: Environment variable naming the address to bind.
HOST_ENV = "TASKLENS_WORKER_HEALTH_HOST"
#: Environment variable with the longest one message may keep every worker slot, in seconds.
MAX_BUSY_ENV = "TASKLENS_WORKER_HEALTH_MAX_BUSY"
#: The endpoint's port when enabled and nothing says otherwise.
DEFAULT_PORT = 8099
#: Loopback unless told otherwise.
DEFAULT_HOST = "127.0.0.1"
#: Longest one message may keep every worker slot before the worker counts as hung, in seconds.
DEFAULT_MAX_BUSY = 600.0

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class WorkerHealthSettings:
    """Where the endpoint listens and when a worker counts as hung.

    Parameters:
      port(int): TCP port (0: any free one).
      host(str): Address to bind.
      max_busy(float): Longest one message may keep every worker slot, in seconds.
    """

    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    max_busy: float = DEFAULT_MAX_BUSY

    @classmethod
    def resolve(cls, option: bool | int | WorkerHealthSettings | None) -> WorkerHealthSettings | None:
        """The settings from ``setup(worker_health=...)`` and the environment; ``None``: disabled.

        Parameters:
          option: ``True``, a port, settings, or ``None``/``False`` to follow ``TASKLENS_WORKER_HEALTH``.

        Raises:
          ValueError: For a port or a duration in the environment that is not a number.
        """
        if isinstance(option, WorkerHealthSettings):
            return option
        enabled = option is True or (isinstance(option, int) and not isinstance(option, bool))
        if option is None:
            enabled = os.environ.get(ENABLE_ENV, "").strip().lower() in _TRUE
        if not enabled:
            return None
        port = (
            option
            if isinstance(option, int) and not isinstance(option, bool)
            else _env_number(PORT_ENV, DEFAULT_PORT)
        )
        return cls(
            port=int(port),
            host=os.environ.get(HOST_ENV) or DEFAULT_HOST,
            max_busy=float(_env_number(MAX_BUSY_ENV, DEFAULT_MAX_BUSY)),
        )


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={text!r} must not be negative")
    return value


_server: WorkerHealthServer | None = None
_server_pid: int | None = None


def start_worker_health(settings: WorkerHealthSettings) -> WorkerHealthServer | None:
    """Serve the endpoint in this process (once) and hook into Dramatiq and Celery if installed.
    When the port is taken (by a sibling worker process), this process publishes its verdict for
    the one that listens; nothing is raised.

    Parameters:
      settings(WorkerHealthSettings): Where to listen, and when a worker is hung.
    """
    global _server, _server_pid
    if _server is not None and _server_pid == os.getpid():
        return _server
    server = WorkerHealthServer(settings.host, settings.port)
    if importlib.util.find_spec("dramatiq") is not None:
        from tasklens.worker_health import dramatiq_probe

        dramatiq_health = dramatiq_probe.DramatiqWorkerProbe(settings.max_busy)
        dramatiq_probe.install(dramatiq_health)
        server.add(dramatiq_health)
    if importlib.util.find_spec("celery") is not None:
        from tasklens.worker_health import celery_probe

        celery_health = celery_probe.CeleryWorkerProbe(settings.max_busy)
        celery_probe.install(celery_health)
        server.add(celery_health)
    _publish(server, settings.port)
    try:
        server.start()
    except OSError as exc:
        # Another worker process of the same command holds the port and answers for this one too.
        logger.info(
            "Worker health: %s:%s is taken (%s); this process's verdict is published for the process"
            " that serves it.",
            settings.host,
            settings.port,
            exc.strerror or exc,
        )
    else:
        server.boards = [
            SiblingBoard.for_port(settings.port),
            SiblingBoard.for_port(settings.port, parent=os.getpid()),
        ]
        logger.info("Worker health on http://%s:%s/healthz", settings.host, server.port)
    _server, _server_pid = server, os.getpid()
    os.register_at_fork(after_in_child=lambda: _after_fork(server, settings.port))
    return server


def _publish(server: WorkerHealthServer, port: int) -> None:
    board = SiblingBoard.for_port(port)
    board.start_publishing(server.local_verdict)
    atexit.register(board.stop)


def _after_fork(server: WorkerHealthServer, port: int) -> None:
    """In a forked worker process: the parent keeps serving; this one publishes its verdict for it.
    Threads do not survive a fork, so the publisher and the probes' helpers start afresh."""
    global _server, _server_pid
    server.forget_listener()
    server.reset_after_fork()
    _server, _server_pid = server, os.getpid()
    _publish(server, port)


def enable_worker_health(option: bool | int | WorkerHealthSettings | None) -> bool:
    """Start the endpoint when ``option`` or the environment asks for it; whether it runs.

    Parameters:
      option: ``setup(worker_health=...)``; see ``WorkerHealthSettings.resolve``.

    Raises:
      ValueError: For a malformed ``TASKLENS_WORKER_HEALTH_*`` variable.
    """
    settings = WorkerHealthSettings.resolve(option)
    return settings is not None and start_worker_health(settings) is not None
