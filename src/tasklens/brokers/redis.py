"""Dramatiq on Redis: queue state and dead-letter actions.

Dramatiq's Redis broker keeps, under a namespace (``dramatiq`` unless configured):

- ``ns:q``, a list of message ids ready to run (RPUSH to enqueue, LPOP to fetch);
- ``ns:q.msgs``, a hash of id to payload for every message of ``q`` not acknowledged yet, ready
  or fetched by a worker (so in flight is its size minus the list's length);
- ``ns:q.DQ`` and ``ns:q.DQ.msgs``, the same for the delay queue;
- ``ns:q.XQ``, a sorted set of dead message ids scored by when they died (Unix ms), and
  ``ns:q.XQ.msgs``, their payloads;
- ``ns:__heartbeats__``, a sorted set of broker ids scored by their last command (Unix ms).

So in flight counts the messages workers fetched, running or prefetched.

Workers: Dramatiq's heartbeats cannot tell a worker from a producer (every command of a Redis
broker, an enqueue included, refreshes its id there) and keep a stopped worker for the whole
heartbeat timeout. Worker processes instrumented by tasklens announce themselves instead
(``tasklens.dramatiq.announcement``): ``ns:__tasklens__.workers``, a sorted set of worker ids
scored by when each expires (Redis server time), with their details in
``ns:__tasklens__.workers.details``. When those exist, or did within the last ten minutes
(``ns:__tasklens__.workers.announced``), the workers are the announced ones, each with its
hostname, pid, queues and threads. Otherwise the count falls back to the heartbeats fresher than
``DEFAULT_HEARTBEAT_WINDOW``, which include every process that used the broker meanwhile
(``workers_note`` says so).

Redis drops the keys of a queue once it is empty, so every reader also remembers the queues it
saw holding messages in ``ns:__tasklens__.queues`` (a sorted set scored by when, in Unix ms; entries
older than ``QUEUE_REGISTRY_TTL`` are dropped): an emptied queue stays listed, for every reader,
instead of vanishing between two reads. A reader that may not write (a read-only user, a replica)
goes on without adding to it.

Queues are found with SCAN (never KEYS, which blocks the server), all queues are read in one
pipelined round trip with a small read-only script per queue (so each queue's counts come from
one moment), and dead-letter actions are Lua scripts, atomic per batch.

Example:

  >>> with RedisInspector("redis://127.0.0.1:6379/0") as inspector:
  ...     for queue in inspector.snapshot().queues:
  ...         print(queue.name, queue.ready, queue.dead)
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from tasklens import semconv
from tasklens.brokers.base import (
    BrokerInspector,
    BrokerSnapshot,
    DeadLetter,
    DeadLetterPage,
    MessageNotFound,
    Progress,
    QueueNotFound,
    QueueStats,
    WorkerInfo,
)
from tasklens.brokers.payload import (
    DEAD_LETTER_QUEUE_SUFFIX,
    DELAY_QUEUE_SUFFIX,
    canonical_queue_name,
    dead_letter_from_payload,
    message_id_of,
    requeued_payload,
)
from tasklens.brokers.redis_client import SCAN_COUNT, glob_escape, redis_client, redis_errors
from tasklens.brokers.url import redact_url

__all__ = [
    "DEFAULT_HEARTBEAT_WINDOW",
    "DEFAULT_NAMESPACE",
    "DEFAULT_REQUEUE_BATCH_SIZE",
    "DEFAULT_TIMEOUT",
    "RedisInspector",
]

#: Dramatiq's default key namespace.
DEFAULT_NAMESPACE = "dramatiq"
#: The URL query parameter naming the namespace (``redis://host/0?namespace=myapp``).
NAMESPACE_QUERY_PARAMETER = "namespace"
#: How long a connect or a command may take before the broker counts as unavailable, in seconds.
DEFAULT_TIMEOUT = 5.0
#: Without announcements, a broker id whose last heartbeat is older than this is not counted, in
#: seconds. A consuming Dramatiq worker fetches, and so heart-beats, at least every
#: ``worker_timeout`` (1 s by default) even when idle, so 10 s keeps a busy or briefly stalled
#: worker counted while a stopped one (or a producer done sending) drops out within 10 s, not
#: within Dramatiq's 60 s heartbeat timeout.
DEFAULT_HEARTBEAT_WINDOW = 10.0
#: ``workers_note`` when the count comes from Dramatiq's heartbeats.
HEARTBEATS_NOTE = (
    "from Dramatiq's heartbeats: every process that used the broker in the last {window:g} s, "
    "producers too; workers instrumented by tasklens announce themselves for an exact count"
)
#: Dead letters moved per atomic script call: small enough that Redis is never blocked for long.
DEFAULT_REQUEUE_BATCH_SIZE = 500
#: Payloads fetched per HSCAN call while looking dead letters up by message id.
HSCAN_COUNT = 500
#: The most dead letters one page may hold.
MAX_PAGE_SIZE = 1000

#: Key suffix of the hash of payloads next to each list or sorted set.
MESSAGES_SUFFIX = ".msgs"
#: Key (after the namespace) of the workers' heartbeats.
HEARTBEATS_KEY = "__heartbeats__"
#: Key (after the namespace) of the queues readers saw holding messages, and how long one stays
#: listed after it was last seen so, in seconds.
QUEUE_REGISTRY_KEY = "__tasklens__.queues"
QUEUE_REGISTRY_TTL = 7 * 86400.0
#: How often one reader reads the registry again, or writes a queue it already wrote, in seconds.
QUEUE_REGISTRY_REFRESH = 60.0
#: Keys (after the namespace) starting with this are Dramatiq's bookkeeping, not queues.
INTERNAL_KEY_PREFIX = "__"


def _script(name: str) -> str:
    return resources.files("tasklens.brokers").joinpath(f"lua/{name}.lua").read_text()


class RedisInspector(BrokerInspector):
    """Reads Dramatiq's queues on Redis and acts on their dead letters.

    Parameters:
      url(str): ``redis://``, ``rediss://`` or ``unix://`` URL; a ``namespace`` query parameter
        sets the namespace.
      namespace(str|None): Dramatiq's key namespace; overrides the URL's (default ``dramatiq``).
      queues(Sequence[str]): Queues to report even while they hold nothing (Redis keeps no trace
        of an empty queue); every other queue is found by scanning.
      timeout(float): Connect and command timeout, in seconds.
      heartbeat_window(float): Without worker announcements, a heartbeat older than this is not
        counted, in seconds.
      requeue_batch_size(int): Dead letters moved per atomic step of ``requeue_dead``.
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str | None = None,
        queues: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
        heartbeat_window: float = DEFAULT_HEARTBEAT_WINDOW,
        requeue_batch_size: int = DEFAULT_REQUEUE_BATCH_SIZE,
    ) -> None:
        if requeue_batch_size < 1:
            raise ValueError("requeue_batch_size must be at least 1")
        self.url = url
        self._redacted_url = redact_url(url)
        connection_url, url_namespace = _split_namespace(url)
        self.namespace = namespace or url_namespace or DEFAULT_NAMESPACE
        self.queues = tuple(dict.fromkeys(canonical_queue_name(q) for q in queues))
        # Queues found once stay reported (at zero once emptied, when Redis drops their keys)
        # so that their series do not vanish from the metrics.
        self._seen: set[str] = set()
        self._registry: set[str] = set()
        self._registry_read_at = -math.inf
        self._written: dict[str, float] = {}
        self.timeout = timeout
        self.heartbeat_window = heartbeat_window
        self.requeue_batch_size = requeue_batch_size
        self._client = redis_client(connection_url, timeout=timeout, shown_url=self._redacted_url)
        self._stats_script = _script("queue_stats")
        self._stats_sha = hashlib.sha1(self._stats_script.encode()).hexdigest()
        self._requeue_script = self._client.register_script(_script("requeue_dead"))
        self._delete_script = self._client.register_script(_script("delete_dead"))
        self._purge_script = self._client.register_script(_script("purge_dead"))

    @property
    def redacted_url(self) -> str:
        return self._redacted_url

    def close(self) -> None:
        self._client.close()

    # -- Reading --------------------------------------------------------------------------------

    def snapshot(self) -> BrokerSnapshot:
        started = time.monotonic()
        with self._errors():
            names = sorted(self._known() | self._discover() | self._registered())
            try:
                rows, census, now_ms = self._read_queues(names)
            except redis.exceptions.NoScriptError:
                # The server lost its script cache (restart, SCRIPT FLUSH): load it and read again.
                self._client.script_load(self._stats_script)
                rows, census, now_ms = self._read_queues(names)
        queues = [
            _queue_stats(name, row, now_ms)
            for name, row in zip(names, rows, strict=True)
            if int(row[0]) >= 0 or name in self._known()
        ]
        # Rebound, not updated in place: other threads may be reading the old set.
        self._seen = self._seen | {q.name for q in queues}
        self._register(
            [name for name, row in zip(names, rows, strict=True) if any(int(value) > 0 for value in row[:4])],
            now_ms,
        )
        worker_list, heartbeats = census
        return BrokerSnapshot(
            queues=queues,
            workers=len(worker_list) if worker_list is not None else heartbeats,
            read_at=time.time(),
            duration=time.monotonic() - started,
            worker_list=worker_list,
            workers_note=None
            if worker_list is not None
            else HEARTBEATS_NOTE.format(window=self.heartbeat_window),
        )

    def _read_queues(
        self, names: Sequence[str]
    ) -> tuple[list[Any], tuple[list[WorkerInfo] | None, int], float]:
        """Every queue's counts and the live workers, in one pipelined round trip."""
        now_ms = time.time() * 1000
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.evalsha(
                self._stats_sha,
                4,
                self._key(name),
                self._key(name + MESSAGES_SUFFIX),
                self._key(name + DELAY_QUEUE_SUFFIX + MESSAGES_SUFFIX),
                self._key(name + DEAD_LETTER_QUEUE_SUFFIX),
                semconv.READY_AT_OPTION,
            )
        pipe.zcount(self._key(HEARTBEATS_KEY), now_ms - self.heartbeat_window * 1000, "+inf")
        pipe.time()
        pipe.zrange(self._key(semconv.WORKERS_KEY), 0, -1, withscores=True)
        pipe.hgetall(self._key(semconv.WORKER_DETAILS_KEY))
        pipe.exists(self._key(semconv.WORKERS_ANNOUNCED_KEY))
        *rows, heartbeats, server_time, announced, details, marker = pipe.execute()
        worker_list = None
        if announced or marker:
            seconds, microseconds = server_time
            worker_list = _announced_workers(
                announced, details, server_now=seconds + microseconds / 1e6, now=now_ms / 1000
            )
        return rows, (worker_list, int(heartbeats)), now_ms

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        _check_page(offset, limit)
        xq = self._key(queue + DEAD_LETTER_QUEUE_SUFFIX)
        with self._errors():
            pipe = self._client.pipeline(transaction=False)
            pipe.exists(*self._queue_keys(queue))
            pipe.zcard(xq)
            pipe.zrevrange(xq, offset, offset + limit - 1, withscores=True)
            exists, total, entries = pipe.execute()
            self._check_queue(queue, exists)
            ids = [message_id for message_id, _ in entries]
            payloads = (
                cast("list[bytes | None]", self._client.hmget(xq + MESSAGES_SUFFIX, ids)) if ids else []
            )
        items = [
            dead_letter_from_payload(
                payload, queue=queue, died_at=score / 1000, fallback_id=message_id.decode()
            )
            for (message_id, score), payload in zip(entries, payloads, strict=True)
            if payload is not None
        ]
        return DeadLetterPage(items=items, total=int(total), offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        with self._errors():
            self._require_queue(queue)
            found = self._find_dead(queue, [message_id])
            if not found:
                raise MessageNotFound(f"no dead letter {message_id!r} in queue {queue!r}")
            redis_id, payload = found[message_id]
            score = self._client.zscore(self._key(queue + DEAD_LETTER_QUEUE_SUFFIX), redis_id)
        died_at = score / 1000 if score is not None else None
        return dead_letter_from_payload(payload, queue=queue, died_at=died_at, fallback_id=message_id)

    # -- Dead-letter actions --------------------------------------------------------------------

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Move dead letters back to the queue, in atomic batches, oldest first.

        Each batch is one script call: if this process dies between two batches, every message
        is either still dead or requeued, once. Requeued messages keep their ids and are pushed
        the way Dramatiq enqueues, so any worker of the queue runs them.

        Parameters:
          queue(str): The canonical queue name.
          message_ids(Sequence[str]|None): Dramatiq message ids, or ``None`` for all.
          reset_retries(bool): Set the retry count back to 0 so the Retries middleware gives
            each message its full number of attempts again.
          progress(Progress|None): Called with (moved so far, total) after each batch.

        Raises:
          MessageNotFound: when an id is not in the dead-letter queue (nothing is moved).
        """
        with self._errors():
            self._require_queue(queue)
            if message_ids is None:
                return self._requeue_all(queue, reset_retries, progress)
            found = self._find_all_dead(queue, message_ids)
            entries = list(found.values())
            moved = 0
            for start in range(0, len(entries), self.requeue_batch_size):
                moved += self._requeue_batch(
                    queue, entries[start : start + self.requeue_batch_size], reset_retries
                )
                if progress is not None:
                    progress(moved, len(entries))
            return moved

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete some dead letters (atomic per batch).

        Raises:
          MessageNotFound: when an id is not in the dead-letter queue (nothing is deleted).
        """
        with self._errors():
            self._require_queue(queue)
            redis_ids = [redis_id for redis_id, _ in self._find_all_dead(queue, message_ids).values()]
            keys = [
                self._key(queue + DEAD_LETTER_QUEUE_SUFFIX),
                self._key(queue + DEAD_LETTER_QUEUE_SUFFIX + MESSAGES_SUFFIX),
            ]
            deleted = 0
            for start in range(0, len(redis_ids), self.requeue_batch_size):
                deleted += int(
                    self._delete_script(keys=keys, args=redis_ids[start : start + self.requeue_batch_size])
                )
            return deleted

    def purge_dead(self, queue: str) -> int:
        """Delete every dead letter of the queue in one atomic step (memory freed in the background)."""
        xq = self._key(queue + DEAD_LETTER_QUEUE_SUFFIX)
        with self._errors():
            self._require_queue(queue)
            return int(self._purge_script(keys=[xq, xq + MESSAGES_SUFFIX]))

    # -- Internals ------------------------------------------------------------------------------

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    def _queue_keys(self, queue: str) -> list[str]:
        names = [queue, queue + DELAY_QUEUE_SUFFIX, queue + DEAD_LETTER_QUEUE_SUFFIX]
        return [self._key(n + suffix) for n in names for suffix in ("", MESSAGES_SUFFIX)]

    def _known(self) -> set[str]:
        return set(self.queues) | self._seen

    def _registered(self) -> set[str]:
        """The queues readers saw holding messages within ``QUEUE_REGISTRY_TTL`` (read again at
        most every ``QUEUE_REGISTRY_REFRESH`` seconds, so repeated reads stay one round trip)."""
        if time.monotonic() - self._registry_read_at < QUEUE_REGISTRY_REFRESH:
            return self._registry
        since_ms = (time.time() - QUEUE_REGISTRY_TTL) * 1000
        key = self._key(QUEUE_REGISTRY_KEY)
        names = cast("list[bytes]", self._client.zrangebyscore(key, since_ms, "+inf"))
        self._registry = {name.decode(errors="replace") for name in names}
        self._registry_read_at = time.monotonic()
        return self._registry

    def _register(self, names: Sequence[str], now_ms: float) -> None:
        """Remember queues seen holding messages (each at most every ``QUEUE_REGISTRY_REFRESH``
        seconds); a reader that may not write does without."""
        refresh_ms = QUEUE_REGISTRY_REFRESH * 1000
        due = [name for name in names if now_ms - self._written.get(name, -math.inf) > refresh_ms]
        if not due:
            return
        key = self._key(QUEUE_REGISTRY_KEY)
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.zadd(key, dict.fromkeys(due, now_ms))
            pipe.zremrangebyscore(key, "-inf", now_ms - QUEUE_REGISTRY_TTL * 1000)
            pipe.execute()
        except redis.exceptions.ResponseError:
            return
        self._written = {**self._written, **dict.fromkeys(due, now_ms)}

    def _discover(self) -> set[str]:
        prefix = self._key("")
        names = set()
        for key in self._client.scan_iter(match=glob_escape(prefix) + "*", count=SCAN_COUNT):
            name = key.decode(errors="replace")[len(prefix) :]
            if name.startswith(INTERNAL_KEY_PREFIX):
                continue
            name = name.removesuffix(MESSAGES_SUFFIX)
            names.add(canonical_queue_name(name))
        return names

    def _check_queue(self, queue: str, existing_keys: int) -> None:
        if not existing_keys and queue not in self._known():
            raise QueueNotFound(
                f"queue {queue!r} not found in namespace {self.namespace!r} of {self._redacted_url}"
            )

    def _require_queue(self, queue: str) -> None:
        if queue not in self._known():
            self._check_queue(queue, int(self._client.exists(*self._queue_keys(queue))))

    def _find_dead(self, queue: str, message_ids: Sequence[str]) -> dict[str, tuple[bytes, bytes]]:
        """Map each requested id found to (id in Redis, payload).

        An id may be Dramatiq's message id (what traces and logs show) or the Redis broker's own
        ``redis_message_id``. The hash is walked with HSCAN, which never blocks the server.
        """
        wanted = set(message_ids)
        xq_msgs = self._key(queue + DEAD_LETTER_QUEUE_SUFFIX + MESSAGES_SUFFIX)
        found: dict[str, tuple[bytes, bytes]] = {}
        wanted_ids = list(wanted)
        direct = cast("list[bytes | None]", self._client.hmget(xq_msgs, wanted_ids) if wanted_ids else [])
        for message_id, payload in zip(wanted_ids, direct, strict=True):
            if payload is not None:
                found[message_id] = (message_id.encode(), payload)
        if len(found) == len(wanted):
            return found
        for redis_id, payload in self._client.hscan_iter(xq_msgs, count=HSCAN_COUNT):
            dramatiq_id = message_id_of(payload)
            if dramatiq_id is not None and dramatiq_id in wanted and dramatiq_id not in found:
                found[dramatiq_id] = (redis_id, payload)
                if len(found) == len(wanted):
                    break
        return found

    def _find_all_dead(self, queue: str, message_ids: Sequence[str]) -> dict[str, tuple[bytes, bytes]]:
        found = self._find_dead(queue, list(dict.fromkeys(message_ids)))
        missing = [message_id for message_id in dict.fromkeys(message_ids) if message_id not in found]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise MessageNotFound(f"no dead letter {shown} in queue {queue!r}: nothing was changed")
        return found

    def _requeue_all(self, queue: str, reset_retries: bool, progress: Progress | None) -> int:
        xq = self._key(queue + DEAD_LETTER_QUEUE_SUFFIX)
        total = int(self._client.zcard(xq))
        moved = skipped = 0
        while moved + skipped < total:
            # Moved messages leave the set, so the oldest remaining ones are always at the start;
            # ids without a payload (which Dramatiq never writes) are stepped over.
            ids = cast("list[bytes]", self._client.zrange(xq, skipped, skipped + self.requeue_batch_size - 1))
            if not ids:
                break
            payloads = cast("list[bytes | None]", self._client.hmget(xq + MESSAGES_SUFFIX, ids))
            entries = [(i, p) for i, p in zip(ids, payloads, strict=True) if p is not None]
            skipped += len(ids) - len(entries)
            moved += self._requeue_batch(queue, entries, reset_retries)
            if progress is not None:
                progress(moved, total)
        return moved

    def _requeue_batch(self, queue: str, entries: Sequence[tuple[bytes, bytes]], reset_retries: bool) -> int:
        if not entries:
            return 0
        args: list[Any] = []
        for redis_id, payload in entries:
            args.append(redis_id)
            args.append(
                requeued_payload(
                    payload, queue=queue, reset_retries=reset_retries, redis_message_id=redis_id.decode()
                )
            )
        xq = self._key(queue + DEAD_LETTER_QUEUE_SUFFIX)
        keys = [xq, xq + MESSAGES_SUFFIX, self._key(queue), self._key(queue + MESSAGES_SUFFIX)]
        return int(self._requeue_script(keys=keys, args=args))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        with redis_errors(self.url, self._redacted_url):
            yield


def _queue_stats(name: str, row: list[Any], now_ms: float) -> QueueStats:
    ready, messages, delayed, dead = (max(0, int(value)) for value in row[:4])
    ready_since = row[4]
    if not ready:
        oldest_age: float | None = 0.0
    elif ready_since is None:
        oldest_age = None
    else:
        oldest_age = max(0.0, (now_ms - int(ready_since)) / 1000)
    return QueueStats(
        name=name,
        ready=int(ready),
        delayed=int(delayed),
        # Never negative: the list can briefly hold an id whose payload was already acknowledged.
        in_flight=max(0, int(messages) - int(ready)),
        dead=int(dead),
        oldest_age=oldest_age,
    )


def _announced_workers(
    entries: Sequence[tuple[bytes, float]], details: dict[bytes, bytes], *, server_now: float, now: float
) -> list[WorkerInfo]:
    """The announced workers not expired yet, sorted by hostname and pid, in this reader's clock
    (the scores are the Redis server's, so the clocks of the machines never have to agree)."""
    skew = now - server_now
    workers = []
    for worker_id, score in entries:
        expires_at = score / 1000
        if expires_at <= server_now:
            continue  # killed: its entry lapses here, and the next announcement drops it
        try:
            info = json.loads(details.get(worker_id, b"{}"))
        except ValueError:
            info = {}
        if not isinstance(info, dict):
            info = {}
        workers.append(_worker_info(worker_id.decode(errors="replace"), info, expires_at + skew))
    return sorted(workers, key=lambda w: (w.hostname, w.pid or 0))


def _worker_info(worker_id: str, info: dict[str, Any], expires_at: float) -> WorkerInfo:
    def number(name: str) -> float | None:
        value = info.get(name)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def integer(name: str) -> int | None:
        value = number(name)
        return int(value) if value is not None else None

    interval = number("interval") or 0.0
    lifetime = number("lifetime") or interval
    host = info.get("hostname") if isinstance(info.get("hostname"), str) else None
    pid = integer("pid")
    queues = info.get("queues")
    versions = [
        f"{name} {info[name]}" for name in ("dramatiq", "tasklens") if isinstance(info.get(name), str)
    ]
    return WorkerInfo(
        hostname=f"{pid}@{host}" if host and pid is not None else worker_id,
        last_heartbeat=expires_at - lifetime,
        expires_at=expires_at,
        freq=interval,
        active=integer("active"),
        processed=integer("processed"),
        pool="threads",
        concurrency=integer("worker_threads"),
        pid=pid,
        software=", ".join(versions) or None,
        queues=tuple(q for q in queues if isinstance(q, str)) if isinstance(queues, list) else None,
    )


def _split_namespace(url: str) -> tuple[str, str | None]:
    """The URL without its ``namespace`` query parameter (unknown to redis-py), and that value."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    namespace = next((v for k, v in pairs if k == NAMESPACE_QUERY_PARAMETER), None)
    if namespace is None:
        return url, None
    query = urlencode([(k, v) for k, v in pairs if k != NAMESPACE_QUERY_PARAMETER])
    if parts.netloc or "://" not in url:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment)), namespace
    return f"{parts.scheme}://{parts.path}" + (f"?{query}" if query else ""), namespace


def _check_page(offset: int, limit: int) -> None:
    if offset < 0:
        raise ValueError(f"offset must be 0 or more, not {offset}")
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, not {limit}")
