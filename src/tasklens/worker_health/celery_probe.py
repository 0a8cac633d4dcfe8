"""The Celery worker's liveness, from inside the worker's main process.

``CeleryWorkerProbe`` listens to Celery's signals in the main process: ``worker_ready`` (the
consumer is connected and consuming), ``heartbeat_sent`` (the worker's event heartbeat),
``task_received`` (a message arrived), ``task_prerun``/``task_postrun`` (with the solo and thread
pools, which run tasks in this process) and ``worker_shutdown``. With the prefork pool the tasks
run in child processes, so the main process answers for them: its pool's processes are alive, and
what each one runs (and since when) comes from the worker's own record of active requests.

The verdict fails when the consumer is not ready or lost its broker connection, when pool
processes died, when heartbeats stopped (three intervals missed), or when every pool slot has been
busy with the same task for more than ``max_busy``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from tasklens.worker_health.verdict import Busy, WorkerProbe, WorkerVerdict, hung_reason

__all__ = ["HEARTBEATS_MISSED", "CeleryWorkerProbe", "install"]

#: Heartbeat intervals that may pass without one before the worker counts as unhealthy.
HEARTBEATS_MISSED = 3
#: Celery's default heartbeat interval, in seconds, when the worker does not say.
DEFAULT_HEARTBEAT_INTERVAL = 2.0


class CeleryWorkerProbe(WorkerProbe):
    """The worker health signal receivers.

    Parameters:
      max_busy(float): Longest one task may keep a pool slot, in seconds; when every slot has
        been busy longer, the worker is hung.
      clock(Callable[[], float]): Wall clock, in Unix seconds.
    """

    def __init__(self, max_busy: float, *, clock: Callable[[], float] = time.time) -> None:
        self.max_busy = max_busy
        self._clock = clock
        self.after_fork()

    def after_fork(self) -> None:
        # Also the initial state: a pool process has no consumer of its own.
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._stopped = False
        self._last_heartbeat: float | None = None
        self._heartbeat_interval = DEFAULT_HEARTBEAT_INTERVAL
        self._last_message_at: float | None = None
        self._inline: dict[int, Busy] = {}
        self._processed = 0

    # -- signal receivers ------------------------------------------------------------------------

    def on_worker_ready(self, sender: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self._consumer, self._stopped = sender, False
            heart = getattr(sender, "heart", None) if sender is not None else None
            interval = getattr(heart, "interval", None)
            if isinstance(interval, (int, float)) and interval > 0:
                self._heartbeat_interval = float(interval)

    def on_heartbeat_sent(self, sender: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self._last_heartbeat = self._clock()
            interval = getattr(sender, "interval", None)
            if isinstance(interval, (int, float)) and interval > 0:
                self._heartbeat_interval = float(interval)

    def on_task_received(self, sender: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self._last_message_at = self._clock()

    def on_task_prerun(self, sender: Any = None, task: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self._inline[threading.get_ident()] = Busy(getattr(task, "name", "?"), self._clock())

    def on_task_postrun(self, sender: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self._inline.pop(threading.get_ident(), None)
            self._processed += 1

    def on_worker_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        with self._lock:
            self._stopped = True

    # -- verdict ---------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._consumer is not None

    def verdict(self) -> WorkerVerdict:
        now = self._clock()
        with self._lock:
            consumer, stopped = self._consumer, self._stopped
            heartbeat, interval = self._last_heartbeat, self._heartbeat_interval
            last_message, inline = self._last_message_at, list(self._inline.values())
        if consumer is None:
            return WorkerVerdict.of("celery", ["the Celery worker is not ready"], {})
        reasons = ["the Celery worker is shutting down"] if stopped else []
        connection = getattr(consumer, "connection", None)
        connected = bool(connection is not None and connection.connected)
        if not connected:
            reasons.append("the consumer has no connection to the broker")
        if heartbeat is not None and now - heartbeat > HEARTBEATS_MISSED * interval:
            reasons.append(f"no heartbeat for {now - heartbeat:.0f} s (every {interval:g} s expected)")
        pool = getattr(consumer, "pool", None)
        slots = _concurrency(consumer, pool)
        processes = _pool_processes(pool)
        if processes is not None:
            alive = sum(p.is_alive() for p in processes)
            if alive < len(processes) or alive == 0:
                reasons.append(f"{len(processes) - alive} of {len(processes)} pool processes are dead")
        busy = _active_requests() if processes is not None else inline
        hung = hung_reason(busy, slots, self.max_busy, now)
        if hung is not None:
            reasons.append(hung)
        checks = {
            "pid": os.getpid(),
            "hostname": getattr(consumer, "hostname", None),
            "broker_connected": connected,
            "pool": type(pool).__module__.rsplit(".", 1)[-1] if pool is not None else None,
            "concurrency": slots,
            "pool_processes": None
            if processes is None
            else {"alive": sum(p.is_alive() for p in processes), "total": len(processes)},
            "busy": [{"task": b.name, "seconds": round(now - b.since, 3)} for b in busy],
            "max_busy_seconds": self.max_busy,
            "seconds_since_last_heartbeat": None if heartbeat is None else round(now - heartbeat, 3),
            "seconds_since_last_message": None if last_message is None else round(now - last_message, 3),
        }
        return WorkerVerdict.of("celery", reasons, checks)


def _concurrency(consumer: Any, pool: Any) -> int:
    for value in (
        getattr(pool, "limit", None),
        getattr(getattr(consumer, "controller", None), "concurrency", None),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return 1


def _pool_processes(pool: Any) -> list[Any] | None:
    """The prefork pool's child processes, or ``None`` for pools that run tasks in-process."""
    inner = getattr(pool, "_pool", None)
    processes = getattr(inner, "_pool", None)
    if not isinstance(processes, list):
        return None
    return [p for p in processes if hasattr(p, "is_alive")]


def _active_requests() -> list[Busy]:
    from celery.worker import state

    busy = []
    for request in list(state.active_requests):
        started = getattr(request, "time_start", None)
        if started:
            busy.append(Busy(getattr(request, "name", "?"), float(started)))
    return busy


def install(probe: CeleryWorkerProbe) -> None:
    """Connect ``probe`` to Celery's signals (weakly held by Celery: the caller keeps it).

    Parameters:
      probe(CeleryWorkerProbe): The probe the health server asks.
    """
    from celery import signals

    signals.worker_ready.connect(probe.on_worker_ready, weak=False)
    signals.heartbeat_sent.connect(probe.on_heartbeat_sent, weak=False)
    signals.task_received.connect(probe.on_task_received, weak=False)
    signals.task_prerun.connect(probe.on_task_prerun, weak=False)
    signals.task_postrun.connect(probe.on_task_postrun, weak=False)
    signals.worker_shutdown.connect(probe.on_worker_shutdown, weak=False)
