"""The store's one writer: a thread that inserts what the receiver accepted, in batches.

The receiver hands over rows and gets a ``Future`` back; the writer thread drains everything
queued into one transaction (one fsync-free commit in WAL mode, which a killed process keeps),
updates the per-minute run rollups in the same transaction, resolves each batch's future once
that transaction is committed, and between transactions drops what retention no longer keeps.
The receiver answers an export only when its future is resolved: what was acknowledged is in the
database. When the queue is full the receiver is told so (``StoreBusy``) instead of waiting, and
answers 503 so that exporters retry later.

A batch the database refuses never takes another with it: when a transaction fails, each batch
is written again in a transaction of its own, and a batch that still fails row by row, so that
only the rows SQLite cannot hold are left out (and logged).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from tasklens.brokers.base import BrokerSnapshot
from tasklens.monitor.store.retention import RetentionPolicy, enforce_step
from tasklens.monitor.store.rows import LogBatch, MetricBatch, SpanBatch
from tasklens.monitor.store.schema import OLDEST_AGE_STATE, connect, create_schema

__all__ = ["StoreBusy", "StoreWriter"]

logger = logging.getLogger(__name__)

#: Batches (one per export request) waiting for the writer before new ones are refused.
DEFAULT_MAX_PENDING = 512
#: Most rows written in one transaction; more wait for the next one.
MAX_ROWS_PER_TRANSACTION = 50_000
#: How often retention runs when nothing asks for it, in seconds.
RETENTION_INTERVAL = 30.0
#: After a write, retention may run for up to this many times as long as the write took.
RETENTION_BUDGET_RATIO = 2.0
#: Longest wait before retention is tried again after it failed, in seconds; the wait starts at
#: ``RETENTION_INTERVAL`` and doubles with each failure in a row.
MAX_RETENTION_BACKOFF = 600.0

INSERT_SPAN = (
    "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service, instance, start_ns,"
    " end_ns, status_code, status_message, operation, actor, queue, message_id, attempt, error_type,"
    " error_message, attributes, events, links) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_METRIC_POINT = (
    "INSERT INTO metric_points (time_ns, start_ns, name, series, kind, temporality, service, instance,"
    " actor, attributes, value, count, sum, bounds, bucket_counts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
UPSERT_METRIC_SERIES = (
    "INSERT INTO metric_series (series, name, temporality, last_ns) VALUES (?,?,?,?)"
    " ON CONFLICT (series) DO UPDATE SET last_ns = max(last_ns, excluded.last_ns)"
)
INSERT_LOG = (
    "INSERT INTO logs (time_ns, trace_id, span_id, severity_number, severity_text, body, service,"
    " instance, attributes) VALUES (?,?,?,?,?,?,?,?,?)"
)
UPSERT_INSTANCE = (
    "INSERT INTO instances (service, instance, host, pid, command, first_ns, last_ns) VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT (service, instance) DO UPDATE SET last_ns = max(last_ns, excluded.last_ns),"
    " first_ns = min(first_ns, excluded.first_ns)"
)
UPSERT_RUN_STATS = (
    "INSERT INTO run_stats (minute, actor, queue, runs, errors, retries, dead_letters)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (minute, actor, queue) DO UPDATE SET"
    " runs = runs + excluded.runs, errors = errors + excluded.errors,"
    " retries = retries + excluded.retries, dead_letters = dead_letters + excluded.dead_letters"
)
UPSERT_RUN_DURATIONS = (
    "INSERT INTO run_durations (minute, actor, queue, bin, count) VALUES (?,?,?,?,?)"
    " ON CONFLICT (minute, actor, queue, bin) DO UPDATE SET count = count + excluded.count"
)
INSERT_QUEUE_DEPTH = (
    "INSERT INTO queue_depth (time_ns, queue, messaging_system, state, value) VALUES (?,?,?,?,?)"
)
INSERT_WORKERS = "INSERT INTO broker_workers (time_ns, workers) VALUES (?,?)"

#: What a row SQLite cannot hold raises when it is bound or inserted.
ROW_ERRORS = (sqlite3.Error, OverflowError, ValueError, UnicodeError)


class StoreBusy(Exception):
    """The writer is behind and refuses new rows for now; the caller should retry later."""


class _Pending:
    """One batch waiting for the writer, and the future resolved when it is committed."""

    __slots__ = ("batch", "future", "kind")

    def __init__(self, kind: str, batch: Any) -> None:
        self.kind = kind
        self.batch = batch
        self.future: Future[int] = Future()

    def rows(self) -> int:
        return len(getattr(self.batch, "spans", ()))


class _Barrier:
    """Queued behind everything submitted so far; set once all of it is committed."""

    def __init__(self, retention: bool = False) -> None:
        self.retention = retention
        self.done = threading.Event()


def rollup(runs: Sequence[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The ``run_stats`` and ``run_durations`` increments for some runs.

    Parameters:
      runs(Sequence[tuple]): ``(minute, actor, queue, failed, retries, dead_letters, bin)`` each.
    """
    stats: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    durations: dict[tuple[int, str, str, int], int] = defaultdict(int)
    for minute, actor, queue_name, failed, retries, dead_letters, bin_ in runs:
        totals = stats[(minute, actor, queue_name)]
        totals[0] += 1
        totals[1] += failed
        totals[2] += retries
        totals[3] += dead_letters
        durations[(minute, actor, queue_name, bin_)] += 1
    return (
        [(*key, *totals) for key, totals in stats.items()],
        [(*key, count) for key, count in durations.items()],
    )


def _series(points: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``(series, name, temporality, last_ns)`` of each series among some metric point rows."""
    latest: dict[int, tuple[Any, ...]] = {}
    for time_ns, _start, name, series, _kind, temporality, *_ in points:
        if series not in latest or latest[series][3] < time_ns:
            latest[series] = (series, name, temporality, time_ns)
    return list(latest.values())


class StoreWriter:
    """Owns the store's write connection and the thread that uses it.

    Parameters:
      path(Path): The database file; created with its tables when missing.
      retention(RetentionPolicy): What to keep.
      max_pending(int): Batches queued before ``StoreBusy`` is raised.
      clock(Callable[[], float]): Wall clock used for retention, in Unix seconds.

    Example:

      >>> writer = StoreWriter(Path("telemetry.db"), RetentionPolicy())
      >>> writer.start()
      >>> writer.write_spans(span_rows(request))
      >>> writer.flush(timeout=5)
    """

    def __init__(
        self,
        path: Path,
        retention: RetentionPolicy,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention = retention
        self._clock = clock
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._conn = connect(path)
        create_schema(self._conn)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tasklens-store-writer", daemon=True)
        self._stopping = False
        self._last_retention = 0.0
        self._retention_due = True
        self._retention_failures = 0
        self._retention_retry_at = 0.0

    def start(self) -> None:
        """Start the writer thread; after ``close``, reopen the store and start anew."""
        if self._thread.is_alive():
            return
        if self._closed:
            self._conn = connect(self.path)
            self._closed = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tasklens-store-writer", daemon=True)
        self._thread.start()

    def _submit(self, kind: str, batch: Any) -> Future[int]:
        if self._stopping:
            raise StoreBusy("the store is closing")
        pending = _Pending(kind, batch)
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            raise StoreBusy("the store is behind; retry later") from None
        return pending.future

    @staticmethod
    def _nothing_to_write() -> Future[int]:
        future: Future[int] = Future()
        future.set_result(0)
        return future

    def write_spans(self, batch: SpanBatch) -> Future[int]:
        """Queue a batch of spans (and its runs) for the next transaction.

        Returns:
          Future[int]: Resolved once the batch is committed, with the number of its rows the
          database refused; failed with the error when the transaction could not be committed.
          Cancelling it before the writer takes the batch withdraws the batch.

        Raises:
          StoreBusy: When the writer is behind.
        """
        return self._submit("spans", batch) if batch.spans else self._nothing_to_write()

    def write_metrics(self, batch: MetricBatch) -> Future[int]:
        """Queue a batch of metric points; as ``write_spans``."""
        return self._submit("metrics", batch) if batch.points else self._nothing_to_write()

    def write_logs(self, batch: LogBatch) -> Future[int]:
        """Queue a batch of log records; as ``write_spans``."""
        return self._submit("logs", batch) if batch.logs else self._nothing_to_write()

    def write_broker_snapshot(self, snapshot: BrokerSnapshot, at: float | None = None) -> None:
        """Queue the depth of every queue by library and state, and the live workers, as read from
        the broker.

        Counts the broker cannot tell (``None``) are left out.

        Parameters:
          snapshot(BrokerSnapshot): One read of the broker.
          at(float|None): When it was read, in Unix seconds; its ``read_at`` when ``None``.
        """
        time_ns = int((snapshot.read_at if at is None else at) * 1e9)
        depths = [
            (time_ns, stats.name, snapshot.system_of(stats), state, value)
            for stats in snapshot.queues
            for state, value in (
                ("ready", stats.ready),
                ("delayed", stats.delayed),
                ("in_flight", stats.in_flight),
                ("dead", stats.dead),
                (OLDEST_AGE_STATE, stats.oldest_age),
            )
            if value is not None
        ]
        self._submit("broker", (depths, (time_ns, snapshot.workers)))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is committed; whether it was within ``timeout``.

        Parameters:
          timeout(float): Longest wait, in seconds.
        """
        barrier = _Barrier()
        self._queue.put(barrier, timeout=timeout)
        return barrier.done.wait(timeout)

    def enforce_retention(self, timeout: float = 60.0) -> bool:
        """Apply retention now, completely, and wait for it; whether it finished within ``timeout``.

        Parameters:
          timeout(float): Longest wait, in seconds.
        """
        barrier = _Barrier(retention=True)
        self._queue.put(barrier, timeout=timeout)
        return barrier.done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, stop the thread and close the connection.

        Parameters:
          timeout(float): Longest wait for the queue to drain, in seconds.
        """
        if self._thread.is_alive():
            self._stopping = True
            self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)
        if not self._thread.is_alive() and not self._closed:
            self._conn.close()
            self._closed = True

    # -- The writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._until_retention())
            except queue.Empty:
                first = ()
            items = self._drain(first)
            stop = None in items
            barriers = [item for item in items if isinstance(item, _Barrier)]
            # A batch whose request gave up waiting is withdrawn: its exporter sends it again.
            batches = [
                item
                for item in items
                if isinstance(item, _Pending) and item.future.set_running_or_notify_cancel()
            ]
            try:
                started = time.perf_counter()
                if batches:
                    self._write(batches)
                # Dropping old rows costs about what writing new ones does: giving it up to twice
                # as long as the write took keeps a full store at its size however fast data
                # comes in.
                budget = RETENTION_BUDGET_RATIO * (time.perf_counter() - started)
            except Exception as error:
                logger.exception("Writing to the telemetry store at %s failed", self.path)
                for pending in batches:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                budget = 0.0
            try:
                self._maybe_enforce_retention(complete=any(b.retention for b in barriers), budget=budget)
            except Exception:
                self._retention_failed()
            for barrier in barriers:
                barrier.done.set()
            if stop:
                return

    def _until_retention(self) -> float:
        now = self._clock()
        if now < self._retention_retry_at:
            return self._retention_retry_at - now
        if self._retention_due:
            return 0.0
        return max(0.0, self._last_retention + RETENTION_INTERVAL - now)

    def _retention_failed(self) -> None:
        """Back off after a failed retention pass, so that a failure that recurs costs one
        traceback and an attempt every few minutes, not a spinning writer."""
        self._retention_failures += 1
        delay = min(RETENTION_INTERVAL * 2 ** (self._retention_failures - 1), MAX_RETENTION_BACKOFF)
        self._retention_retry_at = self._clock() + delay
        self._retention_due = False
        if self._retention_failures == 1:
            logger.exception(
                "Dropping old telemetry from the store at %s failed; trying again in %.0f s", self.path, delay
            )
        else:
            logger.debug("Dropping old telemetry failed again (%d in a row)", self._retention_failures)

    def _drain(self, first: Any) -> list[Any]:
        items = [first]
        rows = 0
        while rows < MAX_ROWS_PER_TRANSACTION:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            if item is None or isinstance(item, _Barrier):
                break
            rows += item.rows()
        return items

    def _write(self, batches: list[_Pending]) -> None:
        try:
            self._transaction(lambda conn: self._insert_all(conn, [(b.kind, b.batch) for b in batches]))
        except ROW_ERRORS as error:
            logger.warning("A write to the telemetry store failed (%s); writing each batch alone", error)
            for pending in batches:
                pending.future.set_result(self._write_alone((pending.kind, pending.batch)))
        else:
            for pending in batches:
                pending.future.set_result(0)
        if self.retention.max_size is not None:
            self._retention_due = True

    def _write_alone(self, batch: tuple[str, Any]) -> int:
        """Write one batch in its own transaction, row by row if it must; the rows left out."""
        try:
            self._transaction(lambda conn: self._insert_all(conn, [batch]))
            return 0
        except ROW_ERRORS:
            pass
        skipped = [0]

        def insert_rows(conn: sqlite3.Connection) -> None:
            skipped[0] = self._insert_rows(conn, *batch)

        self._transaction(insert_rows)
        if skipped[0]:
            logger.warning("Left out %d %s row(s) the telemetry store cannot hold", skipped[0], batch[0])
        return skipped[0]

    def _transaction(self, body: Callable[[sqlite3.Connection], None]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            body(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert_all(conn: sqlite3.Connection, batches: list[tuple[str, Any]]) -> None:
        runs: list[tuple[Any, ...]] = []
        for kind, batch in batches:
            conn.executemany(UPSERT_INSTANCE, getattr(batch, "instances", ()))
            if kind == "spans":
                conn.executemany(INSERT_SPAN, batch.spans)
                runs.extend(batch.runs)
            elif kind == "metrics":
                conn.executemany(INSERT_METRIC_POINT, batch.points)
                conn.executemany(UPSERT_METRIC_SERIES, _series(batch.points))
            elif kind == "logs":
                conn.executemany(INSERT_LOG, batch.logs)
            else:
                depths, workers = batch
                conn.executemany(INSERT_QUEUE_DEPTH, depths)
                conn.execute(INSERT_WORKERS, workers)
        if runs:
            stats, durations = rollup(runs)
            conn.executemany(UPSERT_RUN_STATS, stats)
            conn.executemany(UPSERT_RUN_DURATIONS, durations)

    @staticmethod
    def _insert_rows(conn: sqlite3.Connection, kind: str, batch: Any) -> int:
        """Insert a batch's rows one at a time, skipping those SQLite refuses; how many it refused.
        A refused statement is undone alone: the transaction and the other rows stay."""

        def insert(statement: str, rows: Sequence[tuple[Any, ...]]) -> list[int]:
            kept = []
            for index, row in enumerate(rows):
                try:
                    conn.execute(statement, row)
                    kept.append(index)
                except ROW_ERRORS:
                    pass
            return kept

        insert(UPSERT_INSTANCE, getattr(batch, "instances", ()))
        if kind == "spans":
            kept = set(insert(INSERT_SPAN, batch.spans))
            runs = [run for run, span in zip(batch.runs, batch.run_spans, strict=True) if span in kept]
            if runs:
                stats, durations = rollup(runs)
                conn.executemany(UPSERT_RUN_STATS, stats)
                conn.executemany(UPSERT_RUN_DURATIONS, durations)
            return len(batch.spans) - len(kept)
        if kind == "metrics":
            points = [batch.points[index] for index in insert(INSERT_METRIC_POINT, batch.points)]
            insert(UPSERT_METRIC_SERIES, _series(points))
            return len(batch.points) - len(points)
        if kind == "logs":
            return len(batch.logs) - len(insert(INSERT_LOG, batch.logs))
        depths, workers = batch
        return (
            len(depths) - len(insert(INSERT_QUEUE_DEPTH, depths)) + 1 - len(insert(INSERT_WORKERS, [workers]))
        )

    def _maybe_enforce_retention(self, *, complete: bool, budget: float) -> None:
        now = self._clock()
        if now < self._retention_retry_at and not complete:
            return
        if now - self._last_retention >= RETENTION_INTERVAL:
            self._retention_due = True
        if not (self._retention_due or complete):
            return
        deadline = time.perf_counter() + budget
        more = enforce_step(self._conn, self.retention, int(now * 1e9))
        while more and (complete or time.perf_counter() < deadline):
            more = enforce_step(self._conn, self.retention, int(now * 1e9))
        self._retention_due = more
        self._retention_failures = 0
        if not more:
            self._last_retention = now
