"""The Dramatiq worker's liveness, from inside the worker process.

``DramatiqWorkerProbe`` is a small Dramatiq middleware: it learns of the worker when it boots
(``after_worker_boot``) and of every message a worker thread starts and finishes
(``before_process_message`` / ``after_process_message`` / ``after_skip_message``). Its verdict:

- every consumer thread and every worker thread is alive;
- the broker answers (Redis: a PING bounded by ``BROKER_CHECK_TIMEOUT``; RabbitMQ: the consumers'
  connections are open);
- not every worker thread has been busy with the same message for more than ``max_busy``.

``install`` adds it to the broker of every ``dramatiq.Worker`` created afterwards, which is what
the ``dramatiq`` command does in each worker process after importing the application (and so
after ``tasklens.setup()`` ran).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import dramatiq
import dramatiq.worker
from wrapt import wrap_function_wrapper

from tasklens.worker_health.verdict import Busy, WorkerProbe, WorkerVerdict, hung_reason

__all__ = ["BROKER_CHECK_TIMEOUT", "DramatiqWorkerProbe", "install"]

#: Longest the broker check may take before the broker counts as unreachable, in seconds.
BROKER_CHECK_TIMEOUT = 2.0
#: How long a broker check's result is reused, in seconds (probes may come every second).
BROKER_CHECK_TTL = 2.0


class DramatiqWorkerProbe(dramatiq.Middleware, WorkerProbe):
    """The worker health middleware.

    Parameters:
      max_busy(float): Longest one message may keep a worker thread, in seconds; when every
        thread has been busy longer, the worker is hung.
      clock(Callable[[], float]): Wall clock, in Unix seconds.
    """

    def __init__(self, max_busy: float, *, clock: Callable[[], float] = time.time) -> None:
        self.max_busy = max_busy
        self._clock = clock
        self.after_fork()

    def after_fork(self) -> None:
        # Also the initial state: a forked worker process starts from nothing of its parent's.
        self._lock = threading.Lock()
        self._worker: dramatiq.Worker | None = None
        self._broker: dramatiq.Broker | None = None
        self._stopped = False
        self._busy: dict[int, Busy] = {}
        self._processed = 0
        self._last_message_at: float | None = None
        self._broker_check: tuple[float, str | None] | None = None
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklens-broker-check")

    # -- Dramatiq hooks ------------------------------------------------------------------------

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        with self._lock:
            self._worker, self._broker, self._stopped = worker, broker, False

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        with self._lock:
            self._stopped = True

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with self._lock:
            self._busy[threading.get_ident()] = Busy(message.actor_name, self._clock())

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            self._busy.pop(threading.get_ident(), None)
            self._processed += 1
            self._last_message_at = self._clock()

    after_skip_message = after_process_message

    # -- verdict ---------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._worker is not None

    def verdict(self) -> WorkerVerdict:
        now = self._clock()
        with self._lock:
            worker, broker, stopped = self._worker, self._broker, self._stopped
            busy = list(self._busy.values())
            processed, last = self._processed, self._last_message_at
        if worker is None or broker is None:
            return WorkerVerdict.of("dramatiq", ["the Dramatiq worker has not started"], {})
        reasons = ["the Dramatiq worker is shutting down"] if stopped else []
        consumers = list(worker.consumers.values())
        threads = list(worker.workers)
        dead_consumers = [c.queue_name for c in consumers if not c.is_alive()]
        dead_threads = sum(not t.is_alive() for t in threads)
        if dead_consumers:
            reasons.append(f"consumer threads stopped for {', '.join(sorted(dead_consumers))}")
        if dead_threads:
            reasons.append(f"{dead_threads} of {len(threads)} worker threads stopped")
        broker_error = self._broker_error(broker, consumers)
        if broker_error is not None:
            reasons.append(broker_error)
        hung = hung_reason(busy, len(threads), self.max_busy, now)
        if hung is not None:
            reasons.append(hung)
        checks = {
            "pid": _pid(),
            "consumers": {"alive": len(consumers) - len(dead_consumers), "total": len(consumers)},
            "worker_threads": {"alive": len(threads) - dead_threads, "total": len(threads)},
            "busy": [{"actor": b.name, "seconds": round(now - b.since, 3)} for b in busy],
            "max_busy_seconds": self.max_busy,
            "processed": processed,
            "seconds_since_last_message": None if last is None else round(now - last, 3),
            "broker": "ok" if broker_error is None else broker_error,
        }
        return WorkerVerdict.of("dramatiq", reasons, checks)

    def _broker_error(self, broker: dramatiq.Broker, consumers: list[Any]) -> str | None:
        cached = self._broker_check
        if cached is not None and time.monotonic() - cached[0] < BROKER_CHECK_TTL:
            return cached[1]
        error = self._check_broker(broker, consumers)
        self._broker_check = (time.monotonic(), error)
        return error

    def _check_broker(self, broker: dramatiq.Broker, consumers: list[Any]) -> str | None:
        client = getattr(broker, "client", None)
        if client is not None and hasattr(client, "ping"):
            future = self._checker.submit(client.ping)
            try:
                future.result(timeout=BROKER_CHECK_TIMEOUT)
            except FutureTimeout:
                return f"the broker did not answer a PING within {BROKER_CHECK_TIMEOUT:g} s"
            except Exception as exc:
                return f"the broker is unreachable: {type(exc).__name__}"
            return None
        connections = [getattr(c.consumer, "connection", None) for c in consumers if c.consumer is not None]
        closed = [conn for conn in connections if conn is not None and not getattr(conn, "is_open", True)]
        if closed:
            return f"{len(closed)} consumer connections to the broker are closed"
        return None


def _pid() -> int:
    import os

    return os.getpid()


def install(probe: DramatiqWorkerProbe) -> None:
    """Add ``probe`` to the broker of every ``dramatiq.Worker`` created from now on.

    Parameters:
      probe(DramatiqWorkerProbe): The probe the health server asks.
    """

    def after_init(wrapped: Any, worker: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        broker = worker.broker
        if probe not in broker.middleware:
            broker.add_middleware(probe)

    wrap_function_wrapper("dramatiq.worker", "Worker.__init__", after_init)
