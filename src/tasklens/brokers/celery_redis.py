"""Celery on Redis (kombu's Redis transport): queue state, read-only.

kombu keeps, in the URL's database, every key under the ``global_keyprefix`` transport option
(empty by default):

- each queue ``q`` as lists, one per priority step: ``q`` for step 0 and ``q{sep}{step}`` for the
  others (``sep`` is ``\\x06\\x16``, the steps ``priority_steps`` are 0, 3, 6, 9 by default, and
  0 is served first). Producers LPUSH and workers BRPOP, so a list's oldest message is its last;
- ``_kombu.binding.{exchange}``, a set of ``{routing_key}{sep}{pattern}{sep}{queue}`` for every
  queue declared on the exchange: how queues are found, and how a routing key maps to its queue;
- ``unacked``, a hash of delivery tag to ``[message, exchange, routing_key]`` for every message a
  worker has taken and not acknowledged (kombu records the delivery from a queue as exchange ``""``
  and routing key the queue's name; a direct binding of another exchange is mapped through the
  bindings), and ``unacked_index``, a sorted set of the same tags
  scored by when they were taken (Unix seconds). A worker takes what it prefetches, what it
  executes with ``acks_late``, and countdown/eta tasks, which it holds until they are due. An
  entry older than ``visibility_timeout`` (1 hour by default) is delivered again, to any worker.

So, per queue: ``ready`` is the sum of the step lists (each step in ``priorities``), ``delayed``
the unacknowledged entries whose ``eta`` header is still in the future, ``in_flight`` the other
unacknowledged entries (reserved: prefetched or executing), ``oldest_unacked_age`` the age of its
oldest entry (to compare with ``visibility_timeout``), and ``oldest_age`` comes from the
``tasklens_published_at`` header of the oldest ready message (unknown when the producer did not
stamp it). Celery keeps no dead letters on Redis: ``dead`` is unknown (``None``).

Reads are SCAN/HSCAN/ZSCAN (never KEYS or HGETALL, which block the server) and one pipelined
round trip for the lists; the unacknowledged entries are decoded only up to
``max_unacked_entries`` (beyond, their split is unknown rather than slow).

Example:

  >>> with CeleryRedisInspector("redis://127.0.0.1:6379/0", queues=["celery"]) as inspector:
  ...     stats = inspector.snapshot().queue("celery")
  ...     print(stats.ready, stats.priorities, stats.delayed, stats.in_flight)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis

from tasklens import semconv
from tasklens.brokers.base import BrokerSnapshot, NoDeadLetterQueue, QueueStats, ReadOnlyInspector
from tasklens.brokers.celery_workers import HeartbeatListener, celery_snapshot
from tasklens.brokers.redis_client import SCAN_COUNT, glob_escape, redis_client, redis_errors
from tasklens.brokers.url import redact_url

__all__ = [
    "DEFAULT_PRIORITY_STEPS",
    "DEFAULT_SEP",
    "DEFAULT_VISIBILITY_TIMEOUT",
    "CeleryRedisInspector",
    "KombuRedisOptions",
]

#: kombu's default priority steps (``PRIORITY_STEPS``).
DEFAULT_PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)
#: kombu's default separator between a queue's name and its priority step, and inside bindings.
DEFAULT_SEP = "\x06\x16"
#: kombu's default visibility timeout, in seconds.
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
#: Key (after the prefix) of the hash of unacknowledged messages.
UNACKED_KEY = "unacked"
#: Key (after the prefix) of the sorted set of their delivery tags, scored by when taken.
UNACKED_INDEX_KEY = "unacked_index"
#: Key prefix (after the global prefix) of each exchange's bindings.
BINDING_KEY_PREFIX = "_kombu.binding."
#: Exchanges of Celery's own machinery (events, remote control and its replies): their bindings
#: are not task queues.
INTERNAL_EXCHANGES = frozenset({"celeryev", "celery.pidbox", "reply.celery.pidbox"})
#: The queue Celery sends to unless told otherwise (``task_default_queue``).
DEFAULT_QUEUE = "celery"
#: Most unacknowledged entries decoded per read; beyond, the split per queue is unknown.
DEFAULT_MAX_UNACKED_ENTRIES = 100_000
#: The COUNT hint of each HSCAN/ZSCAN call over the unacknowledged entries.
UNACKED_SCAN_COUNT = 1000
#: Celery's message header holding a countdown/eta task's due time (ISO 8601).
ETA_HEADER = "eta"


@dataclass(frozen=True)
class KombuRedisOptions:
    """The kombu Redis transport options that decide where things are (Celery's
    ``broker_transport_options``).

    Parameters:
      priority_steps(tuple[int, ...]): The priority steps, each a list of its own.
      sep(str): Separator between a queue's name and its step, and inside binding entries.
      global_keyprefix(str): Prefix of every key.
      visibility_timeout(float): Seconds after which an unacknowledged message is redelivered.
    """

    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS
    sep: str = DEFAULT_SEP
    global_keyprefix: str = ""
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT

    @classmethod
    def from_transport_options(cls, options: Mapping[str, Any] | None) -> KombuRedisOptions:
        """Read Celery's ``broker_transport_options``; other options are ignored.

        Raises:
          ValueError: when one of them has the wrong type.
        """
        options = options or {}
        try:
            steps = tuple(
                sorted({int(step) for step in options.get("priority_steps", DEFAULT_PRIORITY_STEPS)})
            )
            visibility = float(options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))
        except (TypeError, ValueError):
            raise ValueError(
                "transport options priority_steps (a list of integers) and visibility_timeout "
                "(seconds) must be numbers"
            ) from None
        sep = options.get("sep", DEFAULT_SEP)
        prefix = options.get("global_keyprefix", "")
        if not steps or not isinstance(sep, str) or not sep or not isinstance(prefix, str):
            raise ValueError(
                "transport options need priority_steps non-empty, sep and global_keyprefix strings"
            )
        return cls(priority_steps=steps, sep=sep, global_keyprefix=prefix, visibility_timeout=visibility)

    def step_key(self, queue: str, step: int) -> str:
        """The list holding ``queue``'s messages of priority ``step`` (as kombu names it)."""
        return f"{self.global_keyprefix}{queue}" + (f"{self.sep}{step}" if step else "")


@dataclass
class _Unacked:
    """What the unacknowledged entries hold for one queue."""

    eta: int = 0
    reserved: int = 0
    oldest_taken: float | None = None


@dataclass
class _Bindings:
    """Queues by exchange and routing key, from ``_kombu.binding.*``."""

    queues: set[str] = field(default_factory=set)
    routes: dict[tuple[str, str], str] = field(default_factory=dict)

    def queue_for(self, exchange: str, routing_key: str) -> str:
        # A direct binding names the queue; the default exchange routes by queue name.
        return self.routes.get((exchange, routing_key), routing_key)


class CeleryRedisInspector(ReadOnlyInspector):
    """Reads Celery's queues on Redis (kombu's layout). Read-only: Celery on Redis has no
    dead-letter queue, so the dead-letter calls raise ``NoDeadLetterQueue``.

    Parameters:
      url(str): ``redis://``, ``rediss://`` or ``unix://`` URL (its database is kombu's).
      queues(Sequence[str]): Queues to report even while empty (``--queue``, the app's);
        every queue bound in ``_kombu.binding.*`` is found too.
      options(KombuRedisOptions|None): The transport options the Celery app uses.
      timeout(float): Connect and command timeout, in seconds.
      workers(HeartbeatListener|None): Where live workers come from; ``None``: unknown.
      max_unacked_entries(int): Most unacknowledged entries decoded per read.
    """

    messaging_system = semconv.MESSAGING_SYSTEM_CELERY

    def __init__(
        self,
        url: str,
        *,
        queues: Sequence[str] = (),
        options: KombuRedisOptions | None = None,
        timeout: float = 5.0,
        workers: HeartbeatListener | None = None,
        max_unacked_entries: int = DEFAULT_MAX_UNACKED_ENTRIES,
    ) -> None:
        self.url = url
        self._redacted_url = redact_url(url)
        self.options = options or KombuRedisOptions()
        self.queues = tuple(dict.fromkeys(queues))
        self.timeout = timeout
        self.max_unacked_entries = max_unacked_entries
        self._workers = workers
        # Queues found once stay reported (at zero once emptied) so their series do not vanish.
        self._seen: set[str] = set()
        self._client = redis_client(url, timeout=timeout, shown_url=self._redacted_url)

    @property
    def redacted_url(self) -> str:
        return self._redacted_url

    def close(self) -> None:
        if self._workers is not None:
            self._workers.close()
        self._client.close()

    # -- Reading --------------------------------------------------------------------------------

    def snapshot(self) -> BrokerSnapshot:
        started = time.monotonic()
        if self._workers is not None:
            self._workers.start()
        with self._errors():
            bindings = self._bindings()
            unacked, unacked_known = self._unacked(bindings)
            names = sorted(set(self.queues) | self._seen | bindings.queues | set(unacked))
            lists = self._read_lists(names)
        now = time.time()
        queues = [
            self._queue_stats(name, lists[name], unacked.get(name, _Unacked()), unacked_known, now)
            for name in names
        ]
        self._seen = self._seen | set(names)
        return celery_snapshot(queues, self._workers, started)

    def _bindings(self) -> _Bindings:
        prefix = self.options.global_keyprefix + BINDING_KEY_PREFIX
        keys = list(self._client.scan_iter(match=glob_escape(prefix) + "*", count=SCAN_COUNT))
        found = _Bindings()
        if not keys:
            return found
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.smembers(key)
        for key, members in zip(keys, pipe.execute(raise_on_error=False), strict=True):
            exchange = key.decode(errors="replace")[len(prefix) :]
            if exchange in INTERNAL_EXCHANGES or not isinstance(members, set):
                continue
            for member in members:
                parts = member.decode(errors="replace").split(self.options.sep)
                if len(parts) != 3 or not parts[2]:
                    continue
                routing_key, _pattern, queue = parts
                found.queues.add(queue)
                found.routes.setdefault((exchange, routing_key), queue)
        return found

    def _unacked(self, bindings: _Bindings) -> tuple[dict[str, _Unacked], bool]:
        """The unacknowledged entries per queue, and whether all of them could be read."""
        prefix = self.options.global_keyprefix
        hash_key, index_key = prefix + UNACKED_KEY, prefix + UNACKED_INDEX_KEY
        try:
            total = int(self._client.hlen(hash_key))
        except redis.ResponseError:
            return {}, True  # not kombu's hash: nothing of Celery's is unacknowledged there
        if total == 0:
            return {}, True
        if total > self.max_unacked_entries:
            return {}, False
        taken: dict[bytes, float] = dict(self._client.zscan_iter(index_key, count=UNACKED_SCAN_COUNT))
        now = datetime.now(timezone.utc)
        per_queue: dict[str, _Unacked] = {}
        for tag, entry in self._client.hscan_iter(hash_key, count=UNACKED_SCAN_COUNT):
            decoded = _decode_unacked(entry)
            if decoded is None:
                continue
            message, exchange, routing_key = decoded
            counts = per_queue.setdefault(bindings.queue_for(exchange, routing_key), _Unacked())
            eta = _eta(message)
            if eta is not None and eta > now:
                counts.eta += 1
            else:
                counts.reserved += 1
            score = taken.get(tag)
            if score is not None and (counts.oldest_taken is None or score < counts.oldest_taken):
                counts.oldest_taken = score
        return per_queue, True

    def _read_lists(self, names: Sequence[str]) -> dict[str, list[tuple[int, int, bytes | None]]]:
        """Every step list's length and oldest message, in one pipelined round trip."""
        steps = self.options.priority_steps
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            for step in steps:
                key = self.options.step_key(name, step)
                pipe.llen(key)
                pipe.lindex(key, -1)
        results = pipe.execute(raise_on_error=False)
        lists: dict[str, list[tuple[int, int, bytes | None]]] = {}
        position = 0
        for name in names:
            rows = []
            for step in steps:
                length, oldest = results[position], results[position + 1]
                position += 2
                # A key of another type is not one of kombu's lists: it holds no message.
                if isinstance(length, int):
                    rows.append((step, length, oldest if isinstance(oldest, bytes) else None))
                else:
                    rows.append((step, 0, None))
            lists[name] = rows
        return lists

    def _queue_stats(
        self,
        name: str,
        rows: list[tuple[int, int, bytes | None]],
        unacked: _Unacked,
        unacked_known: bool,
        now: float,
    ) -> QueueStats:
        priorities = {step: length for step, length, _ in rows}
        ready = sum(priorities.values())
        return QueueStats(
            name=name,
            ready=ready,
            delayed=unacked.eta if unacked_known else None,
            in_flight=unacked.reserved if unacked_known else None,
            dead=None,
            oldest_age=_oldest_age(rows, now),
            priorities=priorities,
            oldest_unacked_age=None if unacked.oldest_taken is None else max(0.0, now - unacked.oldest_taken),
            visibility_timeout=self.options.visibility_timeout,
        )

    # -- Dead letters: none on Redis ------------------------------------------------------------

    def no_dead_letters(self, queue: str) -> NoDeadLetterQueue:
        return NoDeadLetterQueue(
            f"queue {queue!r} has no dead-letter queue: Celery on Redis ({self._redacted_url}) keeps none"
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        with redis_errors(self.url, self._redacted_url):
            yield


def _decode_unacked(entry: bytes) -> tuple[dict[str, Any], str, str] | None:
    """``[message, exchange, routing_key]`` as kombu stores an unacknowledged entry."""
    try:
        value = json.loads(entry)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], dict):
        return None
    message, exchange, routing_key = value
    return message, str(exchange or ""), str(routing_key or "")


def _headers(message: Mapping[str, Any]) -> Mapping[str, Any]:
    headers = message.get("headers")
    return headers if isinstance(headers, dict) else {}


def _eta(message: Mapping[str, Any]) -> datetime | None:
    """When a countdown/eta task is due: the ``eta`` header (protocol 2) or body field (1)."""
    value = _headers(message).get(ETA_HEADER)
    if value is None:
        value = _protocol1_body(message).get(ETA_HEADER)
    if not isinstance(value, str):
        return None
    try:
        eta = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Celery writes aware times; a naive one is UTC, as Celery assumes.
    return eta if eta.tzinfo is not None else eta.replace(tzinfo=timezone.utc)


def _protocol1_body(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """The body of a task message of Celery's protocol 1 (``eta`` lived there), else ``{}``."""
    if "task" in _headers(message):
        return {}  # protocol 2: the body holds only the arguments
    body = message.get("body")
    properties = message.get("properties")
    if not isinstance(body, str) or not isinstance(properties, dict):
        return {}
    try:
        raw = base64.b64decode(body) if properties.get("body_encoding") == "base64" else body.encode()
        decoded = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _published_at(payload: bytes) -> float | None:
    """When the producer published the message, Unix seconds, from the tasklens header."""
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(message, dict):
        return None
    value = _headers(message).get(semconv.PUBLISHED_AT_HEADER)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value / 1000


def _oldest_age(rows: list[tuple[int, int, bytes | None]], now: float) -> float | None:
    """The oldest ready message's age over every step; unknown when one step's is."""
    oldest: float | None = None
    for _step, length, payload in rows:
        if not length:
            continue
        published = _published_at(payload) if payload is not None else None
        if published is None:
            return None
        oldest = published if oldest is None else min(oldest, published)
    return 0.0 if oldest is None else max(0.0, now - oldest)
