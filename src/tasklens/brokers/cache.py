"""A broker inspector whose snapshots are cached, so that many scrapes cost one broker read.

Prometheus, the dashboard, ``/readyz`` and ``/api/health`` may all ask for the broker's state
many times a second; the broker is read at most once per interval, by one thread at a time,
and every caller within the interval gets that read (or its error).

Example:

  >>> inspector = CachedInspector(open_broker("redis://127.0.0.1:6379/0"), interval=5.0)
  >>> inspector.snapshot() is inspector.snapshot()
  True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from tasklens.brokers.base import (
    BrokerError,
    BrokerInspector,
    BrokerSnapshot,
    DeadLetter,
    DeadLetterPage,
    Progress,
)

__all__ = ["DEFAULT_CACHE_INTERVAL", "CachedInspector"]

#: How long a snapshot (or the error a read raised) is reused, in seconds.
DEFAULT_CACHE_INTERVAL = 5.0


class CachedInspector(BrokerInspector):
    """Wraps an inspector: ``snapshot()`` is cached, everything else goes straight through.

    A failed read is cached for the interval too, so a broker that is down is not hammered
    by every scrape (each caller gets the same ``BrokerError``). Dead-letter actions clear the
    cache so the next snapshot shows their effect.

    Parameters:
      inspector(BrokerInspector): The inspector that reads the broker.
      interval(float): How long a read is reused, in seconds.
    """

    def __init__(self, inspector: BrokerInspector, *, interval: float = DEFAULT_CACHE_INTERVAL) -> None:
        if interval < 0:
            raise ValueError("interval must be 0 or more seconds")
        self.inspector = inspector
        self.url = inspector.url
        self.interval = interval
        self._read_lock = threading.Lock()
        self._result: BrokerSnapshot | BrokerError | None = None
        self._read_at = 0.0

    @property
    def redacted_url(self) -> str:
        return self.inspector.redacted_url

    def snapshot(self) -> BrokerSnapshot:
        result = self._fresh()
        if result is None:
            with self._read_lock:
                # Whoever waited for the lock finds the read the previous holder made.
                result = self._fresh()
                if result is None:
                    result = self._read()
        if isinstance(result, BrokerError):
            # A fresh instance per caller: one shared exception would pile up every traceback.
            raise type(result)(str(result)) from None
        return result

    def invalidate(self) -> None:
        """Forget the cached read: the next ``snapshot()`` reads the broker."""
        self._result = None

    def _fresh(self) -> BrokerSnapshot | BrokerError | None:
        result = self._result
        if result is not None and time.monotonic() - self._read_at < self.interval:
            return result
        return None

    def _read(self) -> BrokerSnapshot | BrokerError:
        result: BrokerSnapshot | BrokerError
        try:
            result = self.inspector.snapshot()
        except BrokerError as e:
            result = e
        self._read_at = time.monotonic()
        self._result = result
        return result

    def dead_letters(self, queue: str, *, offset: int = 0, limit: int = 50) -> DeadLetterPage:
        return self.inspector.dead_letters(queue, offset=offset, limit=limit)

    def dead_letter(self, queue: str, message_id: str) -> DeadLetter:
        return self.inspector.dead_letter(queue, message_id)

    def requeue_dead(
        self,
        queue: str,
        message_ids: Sequence[str] | None = None,
        *,
        reset_retries: bool = False,
        progress: Progress | None = None,
    ) -> int:
        try:
            return self.inspector.requeue_dead(
                queue, message_ids, reset_retries=reset_retries, progress=progress
            )
        finally:
            self.invalidate()

    def delete_dead(self, queue: str, message_ids: Sequence[str]) -> int:
        try:
            return self.inspector.delete_dead(queue, message_ids)
        finally:
            self.invalidate()

    def purge_dead(self, queue: str) -> int:
        try:
            return self.inspector.purge_dead(queue)
        finally:
            self.invalidate()

    def close(self) -> None:
        self.inspector.close()
