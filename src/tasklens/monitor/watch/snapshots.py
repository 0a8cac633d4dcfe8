"""Broker snapshots for the monitor: bounded in time, and shared by every caller.

``/metrics``, the health endpoints, the REST API and the OTLP exporter all ask for the broker's
state; a ``SnapshotReader`` answers them from one read per ``ttl`` seconds, runs at most one read
at a time, and never makes a caller wait longer than ``timeout`` seconds, even when the broker
hangs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from tasklens import semconv
from tasklens.brokers.base import BrokerError, BrokerSnapshot, BrokerUnavailable, QueueStats
from tasklens.monitor.watch.inspectors import SharedInspector

__all__ = ["ReadResult", "SnapshotReader", "depths_by_state"]

logger = logging.getLogger(__name__)


def depths_by_state(stats: QueueStats) -> list[tuple[semconv.QueueState, int | None]]:
    """A queue's message counts by ``state`` (ready, delayed, in_flight, dead); ``None`` is unknown.

    Parameters:
      stats(QueueStats): The queue's counts.
    """
    counts: dict[semconv.QueueState, int | None] = {
        "ready": stats.ready,
        "delayed": stats.delayed,
        "in_flight": stats.in_flight,
        "dead": stats.dead,
    }
    return [(state, counts[state]) for state in semconv.QUEUE_STATES]


@dataclass(frozen=True)
class ReadResult:
    """The outcome of one broker read.

    Parameters:
      snapshot(BrokerSnapshot|None): What was read, when the read succeeded.
      error(BrokerError|None): Why it failed, otherwise.
      duration(float): How long the read took (or was waited for), in seconds.
      finished_at(float): When it finished, on the reader's monotonic clock, in seconds.
    """

    snapshot: BrokerSnapshot | None
    error: BrokerError | None
    duration: float
    finished_at: float

    @property
    def up(self) -> bool:
        """Whether the broker answered."""
        return self.error is None


class SnapshotReader:
    """Reads the broker at most once per ``ttl`` seconds, waiting at most ``timeout`` seconds.

    Parameters:
      inspector(SharedInspector): The inspector used for snapshots only.
      redacted_url(str): The broker URL without credentials, for error messages.
      timeout(float): Longest a caller waits for a read, in seconds.
      ttl(float): How long a result (success or failure) is reused, in seconds.
      clock(Callable[[], float]): Monotonic clock, in seconds.
    """

    def __init__(
        self,
        inspector: SharedInspector,
        *,
        redacted_url: str,
        timeout: float,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inspector = inspector
        self._redacted_url = redacted_url
        self._timeout = timeout
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future[ReadResult] | None = None
        self._latest: ReadResult | None = None

    @property
    def latest(self) -> ReadResult | None:
        """The last result, however old, without reading the broker."""
        return self._latest

    def read(self) -> BrokerSnapshot:
        """A snapshot no older than ``ttl`` seconds.

        Raises:
          BrokerError: When the broker did not answer (in time).
        """
        result = self.result()
        if result.error is not None:
            raise result.error
        assert result.snapshot is not None
        return result.snapshot

    def result(self) -> ReadResult:
        """The outcome of a read no older than ``ttl`` seconds; never raises."""
        with self._lock:
            latest = self._latest
            if latest is not None and self._clock() - latest.finished_at < self._ttl:
                return latest
            if self._pending is None:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasklens-snapshot")
                self._pending = self._executor.submit(self._read_once)
            pending = self._pending
        try:
            return pending.result(timeout=self._timeout)
        except FutureTimeout:
            return self._record_timeout()

    def invalidate(self) -> None:
        """Forget the last result: the next caller reads the broker (after a dead-letter action,
        so that the counts show its effect at once)."""
        with self._lock:
            self._latest = None

    def close(self) -> None:
        """Release the thread and the connection; a read in progress is abandoned. A later read
        starts afresh."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._pending = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._inspector.close()

    def _read_once(self) -> ReadResult:
        started = self._clock()
        snapshot: BrokerSnapshot | None = None
        error: BrokerError | None = None
        try:
            with self._inspector.borrow() as inspector:
                snapshot = inspector.snapshot()
        except BrokerError as exc:
            error = exc
        except Exception as exc:
            logger.exception("Reading the broker %s failed.", self._redacted_url)
            error = BrokerUnavailable(f"reading {self._redacted_url} failed: {type(exc).__name__}")
        finished = self._clock()
        result = ReadResult(snapshot, error, finished - started, finished)
        with self._lock:
            self._pending = None
            previous, self._latest = self._latest, result
        self._log_change(previous, result)
        return result

    def _log_change(self, previous: ReadResult | None, result: ReadResult) -> None:
        # Once per outage, not once per scrape.
        was_up = previous is None or previous.up
        if was_up and not result.up:
            logger.warning("Broker %s unavailable: %s", self._redacted_url, result.error)
        elif not was_up and result.up:
            logger.info("Broker %s answers again.", self._redacted_url)

    def _record_timeout(self) -> ReadResult:
        error = BrokerUnavailable(f"broker {self._redacted_url} did not answer within {self._timeout:g} s")
        now = self._clock()
        result = ReadResult(None, error, self._timeout, now)
        with self._lock:
            if self._pending is None and self._latest is not None:
                return self._latest  # the read finished just after the deadline
            # The hung read stays pending: later callers wait on it instead of piling up reads.
            self._latest = result
        return result
