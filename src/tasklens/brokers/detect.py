"""Which task library laid out a broker, when only its URL is given.

``open_broker`` knows the library from ``--library``, from ``--app`` (a Celery app or a Dramatiq
broker module) or from a Redis URL's ``?namespace=`` (Dramatiq's). Otherwise ``DetectedInspector``
looks at the broker on first use, reading only a few keys or declaring passively:

- the queues named (``--queue``) first: Dramatiq's keys of that queue (``dramatiq:q``,
  ``dramatiq:q.msgs``, ...) or its ``q.DQ``/``q.XQ`` queues on RabbitMQ, against kombu's list
  ``q`` (Redis). When only one library has the named queues, it is that one;
- else the whole broker: on Redis kombu's ``_kombu.binding.*`` sets or ``unacked`` hash mean
  Celery, keys under Dramatiq's namespace (``dramatiq:*``) mean Dramatiq; on RabbitMQ the
  ``celeryev`` or ``celery`` exchange means Celery.

Both found is ambiguous and an error asking for ``--library``; neither reads as Dramatiq, as
tasklens always did.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from tasklens import semconv
from tasklens.brokers.base import (
    BrokerError,
    BrokerInspector,
    BrokerSnapshot,
    DeadLetter,
    DeadLetterPage,
    Progress,
)
from tasklens.brokers.url import redact_url

__all__ = ["LIBRARIES", "AmbiguousBroker", "DetectedInspector", "detect_library"]

#: The task libraries whose layouts tasklens reads.
LIBRARIES = (semconv.MESSAGING_SYSTEM_DRAMATIQ, semconv.MESSAGING_SYSTEM_CELERY)
#: Most SCAN calls spent looking for each library's keys.
MAX_SCAN_CALLS = 50
#: Exchanges Celery declares on RabbitMQ (events, default task exchange).
CELERY_EXCHANGES = ("celeryev", "celery")
#: Suffixes of kombu's priority-step lists with the default steps and separator.
CELERY_STEP_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class AmbiguousBroker(BrokerError):
    """The broker holds both libraries' layouts: ``--library`` must say which to read."""


def detect_library(
    url: str,
    *,
    queues: Sequence[str] = (),
    timeout: float = 5.0,
    namespace: str = "dramatiq",
    keyprefix: str = "",
) -> str:
    """``celery`` or ``dramatiq``, from what the broker at ``url`` holds.

    Parameters:
      url(str): The broker URL.
      queues(Sequence[str]): Queue names given (RabbitMQ cannot list its queues).
      timeout(float): Connect and command timeout, in seconds.
      namespace(str): Dramatiq's Redis namespace to look for.
      keyprefix(str): kombu's ``global_keyprefix`` to look under.

    Raises:
      AmbiguousBroker: when both are present.
      BrokerUnavailable: when the broker does not answer.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("amqp", "amqps"):
        celery, dramatiq = _rabbitmq_signs(url, queues, timeout)
    else:
        celery, dramatiq = _redis_signs(url, queues, timeout, namespace, keyprefix)
    if celery and dramatiq:
        raise AmbiguousBroker(
            f"{redact_url(url)} holds both Celery's and Dramatiq's queues: choose with "
            "--library celery or --library dramatiq"
        )
    return semconv.MESSAGING_SYSTEM_CELERY if celery else semconv.MESSAGING_SYSTEM_DRAMATIQ


def _redis_signs(
    url: str, queues: Sequence[str], timeout: float, namespace: str, keyprefix: str
) -> tuple[bool, bool]:
    from tasklens.brokers.redis_client import glob_escape, redis_client, redis_errors

    client = redis_client(url, timeout=timeout)
    try:
        with redis_errors(url, redact_url(url)):
            if queues:
                dramatiq_keys = [
                    f"{namespace}:{q}{suffix}" for q in queues for suffix in ("", ".msgs", ".DQ.msgs", ".XQ")
                ]
                celery_keys = [f"{keyprefix}{q}{step}" for q in queues for step in CELERY_STEP_SUFFIXES]
                by_queue = (bool(client.exists(*celery_keys)), bool(client.exists(*dramatiq_keys)))
                if by_queue[0] != by_queue[1]:
                    return by_queue
            celery = bool(client.exists(f"{keyprefix}unacked")) or _any_key(
                client, glob_escape(f"{keyprefix}_kombu.binding.") + "*"
            )
            dramatiq = _any_key(client, glob_escape(f"{namespace}:") + "*")
    finally:
        client.close()
    return celery, dramatiq


def _any_key(client: object, pattern: str) -> bool:
    cursor = 0
    for _ in range(MAX_SCAN_CALLS):
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=1000)  # type: ignore[attr-defined]
        if keys:
            return True
        if cursor == 0:
            return False
    return False


def _rabbitmq_signs(url: str, queues: Sequence[str], timeout: float) -> tuple[bool, bool]:
    from tasklens.brokers.amqp import AmqpSession

    session = AmqpSession(url, timeout=timeout)
    try:
        with session.channel() as first:
            channel, dramatiq = first, False
            for queue in queues:
                for suffix in (".XQ", ".DQ"):
                    channel, counts = session.declare_passive(channel, queue + suffix)
                    dramatiq = dramatiq or counts.exists
            celery = False
            if not dramatiq:
                # A named queue with Dramatiq's companions is Dramatiq's, whatever else runs there.
                for exchange in CELERY_EXCHANGES:
                    channel, exists = session.exchange_exists(channel, exchange)
                    celery = celery or exists
            if channel is not first and channel.is_open:
                channel.close()
    finally:
        session.close()
    return celery, dramatiq


class DetectedInspector(BrokerInspector):
    """Detects the library on first use, then hands every call to that library's inspector.

    Parameters:
      url(str): The broker URL.
      detect(Callable[[], str]): Reads the broker and names the library (may raise BrokerError,
        in which case the next call tries again).
      open_for(Callable[[str], BrokerInspector]): Opens the inspector of a library.
    """

    def __init__(
        self, url: str, detect: Callable[[], str], open_for: Callable[[str], BrokerInspector]
    ) -> None:
        self.url = url
        self._detect = detect
        self._open_for = open_for
        self._inner: BrokerInspector | None = None
        self._lock = threading.Lock()

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    @property
    def inner(self) -> BrokerInspector:
        """The library's inspector (detecting on first use)."""
        with self._lock:
            if self._inner is None:
                self._inner = self._open_for(self._detect())
            return self._inner

    def close(self) -> None:
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()

    def snapshot(self) -> BrokerSnapshot:
        return self.inner.snapshot()

    def for_queue(
        self, queue: str, messaging_system: str | None = None, broker: str | None = None
    ) -> BrokerInspector:
        return self.inner.for_queue(queue, messaging_system, broker)

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        return self.inner.dead_letters(queue, offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        return self.inner.dead_letter(queue, message_id)

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        return self.inner.requeue_dead(queue, message_ids, reset_retries=reset_retries, progress=progress)

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        return self.inner.delete_dead(queue, message_ids)

    def purge_dead(self, queue: str) -> int:
        return self.inner.purge_dead(queue)
