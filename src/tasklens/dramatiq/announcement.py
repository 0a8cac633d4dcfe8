"""Worker announcements: each Dramatiq worker process on Redis says, every few seconds, that it
is alive and what it is.

Dramatiq's own ``ns:__heartbeats__`` cannot count workers: every command a Redis broker sends,
an enqueue included, adds the broker's id to it, so a script that only sends messages looks like
a worker, and a stopped worker stays there until the 60 s heartbeat timeout. So a worker process
instrumented by tasklens announces itself: when its ``dramatiq.Worker`` boots (never in a
producer, which boots none), a daemon thread writes, every ``DEFAULT_INTERVAL`` seconds and in one
round trip (one small Lua script), under the broker's namespace:

- ``ns:__tasklens__.workers``, a sorted set of worker ids scored by when each counts as gone
  (Redis server time, Unix ms: ``EXPIRY_BEATS`` intervals after its last announcement);
- ``ns:__tasklens__.workers.details``, a hash of worker id to a JSON object: hostname, pid, the
  queues it consumes, worker threads, active and processed messages, started at, last beat,
  interval, Dramatiq and tasklens versions;
- ``ns:__tasklens__.workers.announced``, a marker telling readers that workers here announce
  themselves (so an empty set means no worker), kept ``ANNOUNCED_MARKER_TTL`` seconds.

Every key has a TTL, and each call drops the entries that expired, so nothing lingers. At
worker shutdown the entry is removed at once; a killed worker's entry expires after
``EXPIRY_BEATS`` intervals. ``tasklens.brokers.redis.RedisInspector`` reads them.

The writes go through a client of their own built from the broker's connection settings (with
``COMMAND_TIMEOUT``), never raise into the worker (a failure is logged once per outage), and
are skipped for brokers other than Redis (Dramatiq on RabbitMQ has consumer counts) and for
``StubBroker``. ``OpenTelemetryMiddleware(announce_workers=False)`` or ``TASKLENS_ANNOUNCE_WORKERS=0``
turns them off; ``TASKLENS_ANNOUNCE_INTERVAL`` sets the interval, in seconds.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import dramatiq

from tasklens import semconv
from tasklens.version import __version__

__all__ = [
    "ANNOUNCE_ENV",
    "DEFAULT_INTERVAL",
    "EXPIRY_BEATS",
    "INTERVAL_ENV",
    "WorkerAnnouncement",
    "announcement_interval",
    "announcements_enabled",
]

logger = logging.getLogger(__name__)

#: Environment variable that turns announcements off ("0", "false", "no" or "off").
ANNOUNCE_ENV = "TASKLENS_ANNOUNCE_WORKERS"
#: Environment variable setting the interval between two announcements, in seconds.
INTERVAL_ENV = "TASKLENS_ANNOUNCE_INTERVAL"
#: Seconds between two announcements of a worker process.
DEFAULT_INTERVAL = 5.0
#: A worker counts as gone this many intervals after its last announcement: one or two lost
#: announcements (a slow Redis, a long GC pause) do not make it vanish.
EXPIRY_BEATS = 3
#: How long readers trust an empty set after the last announcement, in seconds: long enough that
#: a fleet stopped for a deploy reads as 0 workers, not as the producers Dramatiq's heartbeats show.
ANNOUNCED_MARKER_TTL = 600.0
#: Connect and command timeout of the announcing client, in seconds.
COMMAND_TIMEOUT = 2.0
#: How long a worker shutdown waits for its entry to be removed, in seconds.
STOP_TIMEOUT = 2 * COMMAND_TIMEOUT + 1.0
#: Expired entries dropped per call, at most (bounds the script's work).
PRUNE_LIMIT = 100

_FALSE = ("0", "false", "no", "off")

# KEYS: the set, the details hash, the marker. ARGV: worker id, details JSON ("" removes the
# worker), lifetime in ms, marker TTL in ms. Times come from the server's clock, so workers and
# readers on machines whose clocks differ agree on who is alive.
_SCRIPT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[5]))
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
if ARGV[2] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return now_ms
end
local lifetime = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now_ms + lifetime, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < lifetime then
    redis.call('PEXPIRE', KEYS[i], lifetime)
  end
end
return now_ms
"""


def announcements_enabled(option: bool) -> bool:
    """Whether worker processes announce themselves: the option, unless ``TASKLENS_ANNOUNCE_WORKERS``
    turns them off.

    Parameters:
      option(bool): ``announce_workers`` given to the middleware or the instrumentor.
    """
    return option and os.environ.get(ANNOUNCE_ENV, "").strip().lower() not in _FALSE


def announcement_interval() -> float:
    """The interval from ``TASKLENS_ANNOUNCE_INTERVAL``, else ``DEFAULT_INTERVAL``, in seconds
    (a value that is not a positive number is logged and ignored)."""
    text = os.environ.get(INTERVAL_ENV, "").strip()
    if not text:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        logger.warning(
            "%s=%r is not a positive number of seconds; using %s.", INTERVAL_ENV, text, DEFAULT_INTERVAL
        )
        return DEFAULT_INTERVAL
    return value


def _redis_client(broker: dramatiq.Broker) -> Any | None:
    """A client for the announcements: the broker's connection settings with bounded timeouts,
    or ``None`` when the broker is not Dramatiq's Redis broker."""
    try:
        import redis
        from dramatiq.brokers.redis import RedisBroker
    except ImportError:
        return None
    if not isinstance(broker, RedisBroker):
        return None
    client = broker.client
    pool = client.connection_pool
    if type(pool) not in (redis.ConnectionPool, redis.BlockingConnectionPool):
        return client  # Sentinel and other pools know their own way to the server
    settings = {
        **pool.connection_kwargs,
        "socket_timeout": COMMAND_TIMEOUT,
        "socket_connect_timeout": COMMAND_TIMEOUT,
    }
    return redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=pool.connection_class, max_connections=2, **settings
        )
    )


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _canonical_queues(names: Any) -> list[str]:
    from dramatiq.common import q_name

    return sorted({q_name(name) for name in names})


class WorkerAnnouncement:
    """Announces one Dramatiq worker process on its Redis broker from a daemon thread.

    Parameters:
      broker(RedisBroker): The worker's broker (its namespace and connection).
      worker(dramatiq.Worker): The worker: its consumers give the queues, its threads the size.
      client(redis.Redis): Where to write (see ``start_for``).
      interval(float): Seconds between two announcements.
      load(callable|None): Returns (active, processed) messages of this process, or None.

    Example:
      >>> announcement = WorkerAnnouncement.start_for(broker, worker)
      >>> announcement.stop()   # at worker shutdown: the entry is gone at once
    """

    def __init__(
        self,
        broker: dramatiq.Broker,
        worker: dramatiq.Worker,
        client: Any,
        *,
        interval: float = DEFAULT_INTERVAL,
        load: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        namespace = getattr(broker, "namespace", "dramatiq")
        self.keys = [
            f"{namespace}:{semconv.WORKERS_KEY}",
            f"{namespace}:{semconv.WORKER_DETAILS_KEY}",
            f"{namespace}:{semconv.WORKERS_ANNOUNCED_KEY}",
        ]
        self.worker = worker
        self.interval = interval
        self.pid = os.getpid()
        self.hostname = socket.gethostname()
        self.worker_id = f"{self.hostname}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self.started_at = time.time()
        self._client = client
        self._load = load
        self._script = client.register_script(_SCRIPT)
        self._versions = {"dramatiq": _version("dramatiq"), "tasklens": __version__}
        self._stopping = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="tasklens-announce", daemon=True)

    @classmethod
    def start_for(
        cls,
        broker: dramatiq.Broker,
        worker: dramatiq.Worker,
        *,
        interval: float | None = None,
        load: Callable[[], tuple[int, int]] | None = None,
    ) -> WorkerAnnouncement | None:
        """Start announcing ``worker``, or return ``None`` when its broker is not Redis.

        Parameters:
          broker(dramatiq.Broker): The worker's broker.
          worker(dramatiq.Worker): The worker that booted.
          interval(float|None): Seconds between announcements; ``TASKLENS_ANNOUNCE_INTERVAL`` or
            ``DEFAULT_INTERVAL`` when None.
          load(callable|None): See the class.
        """
        client = _redis_client(broker)
        if client is None:
            return None
        announcement = cls(broker, worker, client, interval=interval or announcement_interval(), load=load)
        announcement._thread.start()
        return announcement

    @property
    def lifetime(self) -> float:
        """Seconds after an announcement until the worker counts as gone without another one."""
        return self.interval * EXPIRY_BEATS

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop announcing and remove the entry, waiting at most ``timeout`` seconds."""
        if os.getpid() != self.pid or not self._thread.is_alive():
            return  # a forked child holds a copy; the entry is its parent's
        self._stopping.set()
        self._thread.join(timeout)

    def details(self) -> dict[str, Any]:
        """What the worker's entry says about it."""
        active = processed = None
        if self._load is not None:
            active, processed = self._load()
        return {
            "hostname": self.hostname,
            "pid": self.pid,
            "queues": _canonical_queues(list(getattr(self.worker, "consumers", {}))),
            "worker_threads": getattr(self.worker, "worker_threads", None),
            "active": active,
            "processed": processed,
            "started_at": self.started_at,
            "beat_at": time.time(),
            "interval": self.interval,
            "lifetime": self.lifetime,
            **self._versions,
        }

    def _run(self) -> None:
        while True:
            self._write(lambda: json.dumps(self.details(), separators=(",", ":")))
            if self._stopping.wait(self.interval):
                break
        self._write(lambda: "")

    def _write(self, details: Callable[[], str]) -> None:
        try:
            self._script(
                keys=self.keys,
                args=[
                    self.worker_id,
                    details(),
                    int(self.lifetime * 1000),
                    int(ANNOUNCED_MARKER_TTL * 1000),
                    PRUNE_LIMIT,
                ],
            )
        except Exception as exception:  # never into the worker: the next beat tries again
            if not self._failing:
                self._failing = True
                logger.warning(
                    "Could not announce this worker on Redis (%s: %s); retrying every %s s.",
                    type(exception).__name__,
                    exception,
                    self.interval,
                )
            return
        if self._failing:
            self._failing = False
            logger.info("Announcing this worker on Redis again.")
