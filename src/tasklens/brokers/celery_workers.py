"""Live Celery workers, from the heartbeats they already send.

Every Celery worker publishes a ``worker-heartbeat`` event every ``freq`` seconds (2 s by
default) on the ``celeryev`` exchange, plus ``worker-online`` when it starts and
``worker-offline`` when it stops cleanly; it does so even without ``-E`` (task events), unless it
runs with ``--without-heartbeat``. ``HeartbeatListener`` consumes only those worker events (routing
key ``worker.#``) from an auto-delete queue of its own, in a background thread, and keeps:

- one entry per full node name (``a@host`` and ``b@host`` are two workers), with its heartbeat
  fields: active and processed task counts, pid, software;
- the moment each heartbeat was *received* (the monitor's clock, so skew between machines does
  not matter). A worker is gone ``freq`` x 2 seconds after its last heartbeat (Celery's own
  ``HEARTBEAT_EXPIRE_WINDOW`` of 200 %), so a SIGKILLed worker disappears within that time;
  ``worker-offline`` removes it at once;
- its pool and concurrency, which heartbeats do not carry: asked once per new worker with
  ``inspect stats`` addressed to that worker alone (again every few seconds until it answers).

Why heartbeats and not ``inspect ping``: a ping is a broadcast every worker must answer, on every
read, and the reader must wait out its timeout; heartbeats are sent anyway, cost the broker one
fan-out subscription (Redis PUB/SUB) or one small queue (RabbitMQ) for the monitor, and tell when
a worker went silent. On connecting, the listener asks the workers once (the ``heartbeat``
control command) to send a heartbeat at once, so a fresh monitor or CLI knows them within a
moment instead of a whole interval.

When no worker heart-beats at all, the listener cannot tell "no workers" from "heartbeats
disabled": the count is unknown (``None``, with a note), never 0, until a heartbeat has been seen.
With ``ping=True`` it then falls back to ``inspect ping`` (at most every ``PING_INTERVAL`` s).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot, QueueStats, WorkerInfo
from tasklens.brokers.url import redact_url, scrub

__all__ = [
    "EXPIRE_WINDOW",
    "LISTEN_WINDOW",
    "HeartbeatListener",
    "WorkerCensus",
    "WorkerRegistry",
    "celery_snapshot",
    "pool_name",
]

logger = logging.getLogger(__name__)

#: A worker is gone after this many heartbeat intervals without one (Celery's
#: ``HEARTBEAT_EXPIRE_WINDOW`` of 200 %).
EXPIRE_WINDOW = 2.0
#: Heartbeat interval assumed when an event does not say (Celery's default), in seconds.
DEFAULT_FREQ = 2.0
#: How long a new listener listens before its count is trusted: longer than Celery's default
#: heartbeat interval, in seconds.
LISTEN_WINDOW = 2.5
#: Seconds to wait for one worker's ``inspect stats`` reply (its pool and concurrency).
STATS_TIMEOUT = 1.0
#: Least time between two ``inspect stats`` of a worker whose pool is still unknown (a worker
#: heart-beats before its remote control answers), in seconds.
STATS_RETRY_INTERVAL = 5.0
#: Seconds to wait for ``inspect ping`` replies, when pinging is asked for.
PING_TIMEOUT = 1.0
#: Least time between two pings, in seconds.
PING_INTERVAL = 30.0
#: Seconds between two attempts to (re)connect to the broker's events.
RECONNECT_INTERVAL = 2.0
#: How much longer than the listen window (or the connect timeout, when longer) the first census
#: waits for the connection, in seconds.
CONNECT_ALLOWANCE = 0.5
#: Polling step while waiting for the listen window, in seconds.
WAIT_STEP = 0.05
#: Longest ``close`` waits for the listening thread, in seconds (it is a daemon thread: one stuck
#: connecting to a dead broker must not hold the monitor's reads up).
JOIN_TIMEOUT = 1.0
#: Routing key of the worker events (heartbeat, online, offline); task events are not received.
WORKER_EVENTS = "worker.#"
#: Prefix of the listener's own event queue.
QUEUE_PREFIX = "tasklens.celeryev"

NOTE_LISTENING = "listening for worker heartbeats: workers unknown yet"
NOTE_NO_HEARTBEATS = (
    "no worker heartbeats: events disabled (--without-heartbeat) or no worker: workers unknown"
)
NOTE_NO_CELERY = "Celery is not installed: workers unknown"
NOTE_PING = "no worker heartbeats (events disabled?): workers from inspect ping"


def pool_name(implementation: object) -> str | None:
    """Celery's pool name from ``inspect stats``'s ``pool.implementation``
    (``celery.concurrency.prefork:TaskPool`` -> ``prefork``).

    Parameters:
      implementation(object): The value Celery reports.
    """
    if not isinstance(implementation, str) or not implementation:
        return None
    module = implementation.partition(":")[0].rpartition(".")[2]
    return {"thread": "threads", "asynpool": "prefork"}.get(module, module)


@dataclass(frozen=True)
class WorkerCensus:
    """What is known of the live workers at one moment.

    Parameters:
      count(int|None): How many are alive; ``None`` when that cannot be known.
      workers(list[WorkerInfo]|None): Each of them, sorted by node name.
      note(str|None): Why the count is unknown, or where it comes from when not heartbeats.
    """

    count: int | None
    workers: list[WorkerInfo] | None
    note: str | None = None


class WorkerRegistry:
    """The workers heard from, by full node name; thread-safe.

    Parameters:
      clock(Callable[[], float]): Wall clock, Unix seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}
        self.heard_any = False

    def record(self, event: Mapping[str, Any]) -> bool:
        """Apply a ``worker-online`` or ``worker-heartbeat`` event; True for a worker not known
        before (whose pool is then worth asking)."""
        hostname = event.get("hostname")
        if not isinstance(hostname, str) or not hostname:
            return False
        now = self._clock()
        freq = _number(event.get("freq"), float) or DEFAULT_FREQ
        with self._lock:
            self.heard_any = True
            known = self._workers.get(hostname)
            alive = known is not None and known.expires_at > now
            software = " ".join(str(event[k]) for k in ("sw_ident", "sw_ver") if event.get(k)) or None
            self._workers[hostname] = WorkerInfo(
                hostname=hostname,
                last_heartbeat=now,
                expires_at=now + freq * EXPIRE_WINDOW,
                freq=freq,
                active=_number(event.get("active"), int),
                processed=_number(event.get("processed"), int),
                pool=known.pool if alive and known else None,
                concurrency=known.concurrency if alive and known else None,
                pid=_number(event.get("pid"), int),
                software=software,
            )
            return not alive

    def forget(self, hostname: str) -> None:
        """A ``worker-offline`` event: the worker stopped cleanly."""
        with self._lock:
            self._workers.pop(hostname, None)

    def needs_description(self, hostname: str) -> bool:
        """Whether the worker is known but its pool and concurrency are not yet."""
        with self._lock:
            known = self._workers.get(hostname)
            return known is not None and known.concurrency is None

    def describe(self, hostname: str, *, pool: str | None, concurrency: int | None) -> None:
        """Add what ``inspect stats`` told of a worker."""
        with self._lock:
            known = self._workers.get(hostname)
            if known is not None:
                self._workers[hostname] = replace(known, pool=pool, concurrency=concurrency)

    def live(self) -> list[WorkerInfo]:
        """The workers whose last heartbeat has not expired, by node name; expired ones go."""
        now = self._clock()
        with self._lock:
            for hostname in [h for h, w in self._workers.items() if w.expires_at <= now]:
                del self._workers[hostname]
            return sorted(self._workers.values(), key=lambda worker: worker.hostname)


def _number(value: object, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


def celery_snapshot(
    queues: list[QueueStats], listener: HeartbeatListener | None, started: float
) -> BrokerSnapshot:
    """A Celery layout's snapshot: its queues, and the live workers ``listener`` knows (unknown,
    with a note, when Celery is not installed and there is no listener).

    Parameters:
      queues(list[QueueStats]): What the layout read.
      listener(HeartbeatListener|None): The worker heartbeats, started before the read.
      started(float): When the read started, on the monotonic clock.
    """
    census = listener.census() if listener is not None else None
    return BrokerSnapshot(
        queues=queues,
        workers=census.count if census is not None else None,
        read_at=time.time(),
        duration=time.monotonic() - started,
        messaging_system=semconv.MESSAGING_SYSTEM_CELERY,
        worker_list=census.workers if census is not None else None,
        workers_note=census.note if census is not None else NOTE_NO_CELERY,
    )


class HeartbeatListener:
    """Receives Celery's worker events in a background thread and counts the live workers.

    Parameters:
      broker_url(str): The Celery broker (``redis://...`` or ``amqp://...``).
      transport_options(Mapping|None): Celery's ``broker_transport_options`` (a Redis
        ``global_keyprefix`` changes the events' channel too).
      timeout(float): Connect timeout, in seconds.
      ping(bool): When no heartbeat has been heard, count the workers that answer ``inspect ping``.
      listen_window(float): How long the first ``census`` waits for heartbeats, in seconds.
      ping_interval(float): Least time between two pings, in seconds.
      clock(Callable[[], float]): Wall clock, Unix seconds.

    Example:

      >>> listener = HeartbeatListener("redis://127.0.0.1:6379/0")
      >>> listener.start()
      >>> listener.census().count
      2
    """

    def __init__(
        self,
        broker_url: str,
        *,
        transport_options: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        ping: bool = False,
        listen_window: float = LISTEN_WINDOW,
        ping_interval: float = PING_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker_url = broker_url
        self.transport_options = dict(transport_options or {})
        self.timeout = timeout
        self.ping = ping
        self.listen_window = listen_window
        self.ping_interval = ping_interval
        self.registry = WorkerRegistry(clock)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening_since: float | None = None
        self._started_at: float | None = None
        self._error: str | None = None
        self._receiver: Any = None
        self._app: Any = None
        self._app_lock = threading.Lock()
        self._stats = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklens-celery-stats")
        self._last_ping: float | None = None
        self._pinged: WorkerCensus | None = None
        self._asked: dict[str, float] = {}

    def start(self) -> None:
        """Start listening (once; later calls do nothing)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._started_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="tasklens-celery-events", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop listening and drop the connection."""
        with self._lock:
            thread, self._thread = self._thread, None
        self._stop.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True
        if thread is not None:
            thread.join(timeout=JOIN_TIMEOUT)
        self._stats.shutdown(wait=False, cancel_futures=True)
        with self._app_lock:
            app, self._app = self._app, None
        if app is not None:
            app.close()

    def census(self, *, wait: bool = True) -> WorkerCensus:
        """The live workers now. Until the listener has listened for ``listen_window`` seconds
        the count is unknown; the first call after ``start`` waits for that, but never more
        than ``listen_window`` seconds after ``start`` (a slow connection is reported unknown,
        not waited for).

        Parameters:
          wait(bool): Whether to wait for the listen window; ``False`` answers at once.
        """
        if wait:
            self._wait_for_window()
        since = self._listening_since
        if since is None or time.monotonic() - since < self.listen_window:
            note = NOTE_LISTENING if self._error is None else f"{self._error}: workers unknown"
            return WorkerCensus(None, None, note)
        workers = self.registry.live()
        if self.registry.heard_any:
            return WorkerCensus(len(workers), workers)
        if self.ping:
            return self._ping_census()
        return WorkerCensus(None, None, NOTE_NO_HEARTBEATS)

    def _wait_for_window(self) -> None:
        started = self._started_at
        if started is None:
            return
        # Listening began at connection, after start: a loaded machine or a slow network may
        # take seconds to connect, so the first census waits for it up to the connect timeout
        # (less an allowance, so a monitor's read, bounded by the same timeout, still answers).
        deadline = started + max(self.listen_window + CONNECT_ALLOWANCE, self.timeout - CONNECT_ALLOWANCE)
        while not self._stop.is_set():
            since = self._listening_since
            now = time.monotonic()
            if since is not None and now - since >= self.listen_window:
                return
            if now >= deadline:
                return
            self._stop.wait(min(WAIT_STEP, deadline - now))

    # -- The background thread ------------------------------------------------------------------

    def _celery_app(self) -> Any:
        with self._app_lock:
            if self._app is None:
                from celery import Celery

                app = Celery("tasklens-monitor", broker=self.broker_url, set_as_current=False)
                app.conf.broker_transport_options = self.transport_options
                app.conf.broker_connection_timeout = self.timeout
                self._app = app
            return self._app

    def _run(self) -> None:
        shown = redact_url(self.broker_url)
        while not self._stop.is_set():
            try:
                self._consume()
            except Exception as exc:
                reason = scrub(str(exc) or type(exc).__name__, self.broker_url)
                if self._error is None:
                    logger.warning("Cannot receive Celery worker events from %s: %s", shown, reason)
                self._error = f"cannot receive worker events from {shown}: {reason}"
                self._listening_since = None
            self._stop.wait(RECONNECT_INTERVAL)

    def _consume(self) -> None:
        app = self._celery_app()
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=self.timeout)
            receiver = app.events.Receiver(
                connection,
                handlers={
                    "worker-online": self._on_heartbeat,
                    "worker-heartbeat": self._on_heartbeat,
                    "worker-offline": self._on_offline,
                },
                routing_key=WORKER_EVENTS,
                node_id=uuid.uuid4().hex,
                queue_prefix=QUEUE_PREFIX,
            )
            receiver.connect_max_retries = 1
            receiver.on_connection_revived = self._on_connected
            self._receiver = receiver
            if self._stop.is_set():
                return
            # Iterating consumes; ``should_stop`` (set by close) ends it within a second.
            for _ in receiver.consume(limit=None, wakeup=True):
                pass

    def _on_connected(self) -> None:
        if self._error is not None:
            logger.info("Receiving Celery worker events from %s again.", redact_url(self.broker_url))
        self._error = None
        self._listening_since = time.monotonic()

    def _on_heartbeat(self, event: Mapping[str, Any]) -> None:
        new = self.registry.record(event)
        hostname = event.get("hostname")
        if not isinstance(hostname, str):
            return
        now = time.monotonic()
        if new or (
            self.registry.needs_description(hostname)
            and now - self._asked.get(hostname, 0.0) >= STATS_RETRY_INTERVAL
        ):
            self._asked[hostname] = now
            self._stats.submit(self._describe, hostname)

    def _on_offline(self, event: Mapping[str, Any]) -> None:
        hostname = event.get("hostname")
        if isinstance(hostname, str):
            self.registry.forget(hostname)
            self._asked.pop(hostname, None)

    def _describe(self, hostname: str) -> None:
        """Ask one new worker its pool and concurrency (heartbeats do not carry them)."""
        try:
            replies = (
                self._celery_app().control.inspect(destination=[hostname], timeout=STATS_TIMEOUT).stats()
            )
        except Exception:
            logger.debug("inspect stats of %s failed", hostname, exc_info=True)
            return
        stats = (replies or {}).get(hostname)
        pool = stats.get("pool") if isinstance(stats, dict) else None
        if isinstance(pool, dict):
            self.registry.describe(
                hostname,
                pool=pool_name(pool.get("implementation")),
                concurrency=_number(pool.get("max-concurrency"), int),
            )

    def _ping_census(self) -> WorkerCensus:
        now = time.monotonic()
        if (
            self._pinged is not None
            and self._last_ping is not None
            and now - self._last_ping < self.ping_interval
        ):
            return self._pinged
        self._last_ping = now
        try:
            replies: Sequence[Mapping[str, Any]] = self._celery_app().control.ping(timeout=PING_TIMEOUT) or []
        except Exception as exc:
            reason = scrub(str(exc) or type(exc).__name__, self.broker_url)
            self._pinged = WorkerCensus(None, None, f"no worker heartbeats and inspect ping failed: {reason}")
            return self._pinged
        wall = time.time()
        hostnames = sorted({name for reply in replies for name in reply})
        workers = [
            WorkerInfo(
                hostname=name,
                last_heartbeat=wall,
                expires_at=wall + self.ping_interval,
                freq=self.ping_interval,
            )
            for name in hostnames
        ]
        self._pinged = WorkerCensus(len(workers), workers, NOTE_PING)
        return self._pinged
