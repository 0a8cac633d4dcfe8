"""What the dashboard asks the store: rates, percentiles, runs, traces, depth and processes.

A ``StoreReader`` answers each question of the dashboard data API (``docs/dashboard-api.md``)
with JSON-ready dicts. Rates, error rates and duration percentiles come from the per-minute run
rollups, so they cost the same with a thousand stored spans or a million; runs and traces come
from the spans table through its indexes. Each thread reads through its own connection, so
readers never wait for the writer or for each other.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasklens import semconv
from tasklens.monitor.store.quantiles import quantiles
from tasklens.monitor.store.schema import OLDEST_AGE_STATE, connect

__all__ = ["RUN_STATUSES", "InvalidQuery", "RunFilter", "StoreReader", "depth_step_for", "step_for"]

#: Points a chart gets across its window, at most.
SERIES_POINTS = 60
#: The finest step of a series: the rollups count runs per minute, in seconds.
MIN_STEP = 60
#: Steps a depth series may take, in seconds: the finest is the monitor's snapshot interval.
DEPTH_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
#: What a process that ran tasks is, and one that only sent messages.
WORKER = "worker"
PRODUCER = "producer"
#: Commands that start worker processes: a process started by one is a worker before it runs a task.
WORKER_COMMANDS = frozenset({"dramatiq", "dramatiq-gevent", "celery"})
#: A process is live until it misses this many of its reports (plus ``LIVE_SLACK`` seconds).
LIVE_REPORTS = 2.5
LIVE_SLACK = 5.0
#: The report interval assumed before a process has reported twice: the SDK's default metric
#: export interval, in seconds.
DEFAULT_REPORT_INTERVAL = 60.0
#: How far back live workers are looked for, in seconds: more than ``LIVE_REPORTS`` of the
#: default report interval.
PROCESS_LIVENESS_WINDOW = 300.0
#: Most actors listed as the worst ones on the overview.
WORST_ACTORS = 5
#: The recent interval the "now" figures cover (the minute under way added), in seconds.
RECENT_INTERVAL = 300
#: Runs listed on an actor's page.
RECENT_RUNS = 50
#: Runs per page of ``/api/runs`` unless asked otherwise, and at most.
DEFAULT_RUNS_LIMIT = 50
MAX_RUNS_LIMIT = 500

#: Names under which the system-metrics instrumentation reports a process's CPU, memory and
#: threads, newest convention first.
CPU_UTILIZATION = ("process.cpu.utilization", "process.runtime.cpython.cpu.utilization")
CPU_TIME = ("process.cpu.time", "process.runtime.cpython.cpu_time")
MEMORY = ("process.memory.usage", "process.runtime.cpython.memory")
THREADS = ("process.thread.count", "process.runtime.cpython.thread_count")

_STATUS_ERROR = 2
_KINDS = {0: "INTERNAL", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_STATUSES = {0: "UNSET", 1: "OK", 2: "ERROR"}
_SEVERITIES = ((21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE"))
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
#: A shortened id: at least 6 hexadecimal digits (dashes allowed after them).
_ID_PREFIX = re.compile(r"^[0-9a-fA-F]{6}[0-9a-fA-F-]*$")
#: Above every character an id holds, to turn a prefix into a range.
_MAX_CHAR = "\U0010ffff"
#: Whether a run's events include a scheduled retry, or its dead-lettering (events are stored as
#: compact JSON).
_RETRIED = f"instr(coalesce(events, ''), '\"name\":\"{semconv.EVENT_RETRY_SCHEDULED}\"') > 0"
_DEAD = f"instr(coalesce(events, ''), '\"name\":\"{semconv.EVENT_DEAD_LETTERED}\"') > 0"

#: What each ``status`` of ``/api/runs`` selects: ``ok`` and ``error`` by the span's status, the
#: others by how the attempt ended.
RUN_STATUSES: dict[str, str] = {
    "ok": f"status_code != {_STATUS_ERROR}",
    "error": f"status_code = {_STATUS_ERROR}",
    "succeeded_after_retry": f"status_code != {_STATUS_ERROR} AND attempt > 1",
    "retried": f"status_code = {_STATUS_ERROR} AND {_RETRIED} AND NOT {_DEAD}",
    "dead_lettered": f"status_code = {_STATUS_ERROR} AND {_DEAD}",
    "failed": f"status_code = {_STATUS_ERROR} AND NOT {_RETRIED} AND NOT {_DEAD}",
}
_NS = 1_000_000_000


class InvalidQuery(ValueError):
    """A parameter of a query is not acceptable; the message says which and why."""


def step_for(window: float) -> int:
    """The step of a series over ``window`` seconds: whole minutes, about ``SERIES_POINTS`` points.

    Parameters:
      window(float): The span of the series, in seconds.
    """
    minutes = math.ceil(window / SERIES_POINTS / MIN_STEP)
    return max(1, minutes) * MIN_STEP


@dataclass(frozen=True)
class RunFilter:
    """Which runs ``/api/runs`` lists.

    Parameters:
      actor(str|None): Only this actor's runs.
      queue(str|None): Only runs from this queue.
      status(str|None): ``ok`` or ``error``.
      text(str|None): Matches a message id or trace id exactly, or part of an actor name,
        exception type or exception message.
      since(float|None): Runs started at or after this time, in Unix seconds.
      until(float|None): Runs started before this time, in Unix seconds.
      limit(int): Most runs returned.
      cursor(str|None): ``next_cursor`` of the previous page.
    """

    actor: str | None = None
    queue: str | None = None
    status: str | None = None
    text: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_RUNS_LIMIT
    cursor: str | None = None


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _severity(number: int | None, text: str | None) -> str:
    if text:
        return text
    for floor, name in _SEVERITIES:
        if (number or 0) >= floor:
            return name
    return "UNSPECIFIED"


def _histogram_quantile(bounds: list[float], counts: list[int], q: float) -> float | None:
    """The ``q``-quantile of an explicit-bucket histogram, interpolated within its bucket."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            if index >= len(bounds):
                return float(bounds[-1]) if bounds else None
            lower = float(bounds[index - 1]) if index > 0 else 0.0
            return lower + (float(bounds[index]) - lower) * (rank - seen) / count
        seen += count
    return float(bounds[-1]) if bounds else None


class StoreReader:
    """Answers the dashboard's questions from the store.

    Parameters:
      path(Path): The database file (written by a ``StoreWriter``).
      clock(Callable[[], float]): Wall clock, in Unix seconds; windows end at its "now".

    Example:

      >>> reader = StoreReader(Path("telemetry.db"))
      >>> reader.actors(window=3600)["items"][0]["p95"]
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._generation = 0

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.generation != self._generation:
            conn = connect(self.path, readonly=True)
            with self._lock:
                self._connections.append(conn)
                self._local.conn, self._local.generation = conn, self._generation
        return conn

    def close(self) -> None:
        """Close every reader connection; a later query opens a new one."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._generation += 1

    # -- Overview and actors ----------------------------------------------------------------------

    def _data_since(self, since: float) -> float | None:
        """When the first run at or after ``since`` was counted (its minute), in Unix seconds."""
        row = (
            self._conn()
            .execute("SELECT MIN(minute) FROM run_stats WHERE minute >= ?", (int(since),))
            .fetchone()
        )
        return None if row is None or row[0] is None else float(row[0])

    def _covered(self, window: float) -> tuple[float, float | None]:
        """The start of what the window holds (the window's start, or the first data after it)
        and the start of the data, ``None`` without any."""
        now = self._clock()
        first_minute = (now - window) // MIN_STEP * MIN_STEP
        data = self._data_since(first_minute)
        return (max(now - window, data) if data is not None else now - window), data

    def _series(self, window: float, step: int, actor: str | None) -> list[dict[str, Any]]:
        now = self._clock()
        covered, data = self._covered(window)
        if data is None:
            return []
        first = int(covered // step * step)
        last = int(now // step * step)
        where = "minute >= ?"
        params: list[Any] = [first]
        if actor is not None:
            where += " AND actor = ?"
            params.append(actor)
        totals = {
            t: (runs, errors, retries, dead)
            for t, runs, errors, retries, dead in self._conn().execute(
                f"SELECT minute / {step} * {step} AS t, SUM(runs), SUM(errors), SUM(retries),"
                f" SUM(dead_letters) FROM run_stats WHERE {where} GROUP BY t",
                params,
            )
        }
        bins: dict[int, dict[int, int]] = defaultdict(dict)
        for t, bin_, count in self._conn().execute(
            f"SELECT minute / {step} * {step} AS t, bin, SUM(count) FROM run_durations"
            f" WHERE {where} GROUP BY t, bin",
            params,
        ):
            bins[t][bin_] = count
        series = []
        for t in range(first, last + 1, step):
            runs, errors, retries, dead = totals.get(t, (0, 0, 0, 0))
            # The bucket still filling holds what its elapsed part saw: divide by that, not by
            # the whole step, or it reads as a slowdown.
            elapsed = min(float(step), max(now - t, 1.0))
            series.append(
                {
                    "t": float(t),
                    "runs": runs,
                    "errors": errors,
                    **_outcomes(runs, errors, retries, dead),
                    "throughput": runs / elapsed,
                    "p95": quantiles(bins.get(t, {}), (0.95,))[0],
                    "partial": t + step > now,
                    "elapsed": elapsed,
                }
            )
        return series

    def _recovered(self, since: float, actor: str | None) -> dict[str, int]:
        """Runs that succeeded on a later attempt since ``since``, per actor."""
        where = f"operation = 'process' AND start_ns >= ? AND attempt > 1 AND status_code != {_STATUS_ERROR}"
        params: list[Any] = [int(since * _NS)]
        if actor is not None:
            where += " AND actor = ?"
            params.append(actor)
        return {
            str(name): count
            for name, count in self._conn().execute(
                f"SELECT actor, COUNT(*) FROM spans WHERE {where} GROUP BY actor", params
            )
        }

    def _actor_rows(self, window: float, actor: str | None = None) -> list[dict[str, Any]]:
        now = self._clock()
        covered, _ = self._covered(window)
        first = int((now - window) // MIN_STEP * MIN_STEP)
        recent_first = int(now // MIN_STEP * MIN_STEP - RECENT_INTERVAL)
        where = "minute >= ?"
        params: list[Any] = [first]
        if actor is not None:
            where += " AND actor = ?"
            params.append(actor)
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        queues: dict[str, dict[str, int]] = defaultdict(dict)
        for name, queue_name, runs, errors, retries, dead, recent in self._conn().execute(
            "SELECT actor, queue, SUM(runs), SUM(errors), SUM(retries), SUM(dead_letters),"
            f" SUM(CASE WHEN minute >= {recent_first} THEN errors - retries ELSE 0 END)"
            f" FROM run_stats WHERE {where} GROUP BY actor, queue",
            params,
        ):
            row = totals[name]
            row[0] += runs
            row[1] += errors
            row[2] += retries
            row[3] += dead
            row[4] += recent
            queues[name][queue_name] = runs
        bins: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for name, bin_, count in self._conn().execute(
            f"SELECT actor, bin, SUM(count) FROM run_durations WHERE {where} GROUP BY actor, bin", params
        ):
            bins[name][bin_] += count
        waits = self._queue_wait_p95(window, actor)
        recovered = self._recovered(now - window, actor) if totals else {}
        interval = max(now - covered, 1.0)
        items: list[dict[str, Any]] = []
        for name, (runs, errors, retries, dead, recent) in totals.items():
            p50, p95, p99 = quantiles(bins[name], (0.5, 0.95, 0.99))
            outcomes = _outcomes(runs, errors, retries, dead)
            error_rate = outcomes["error_rate"]
            items.append(
                {
                    "actor": name,
                    "queue": max(queues[name], key=queues[name].__getitem__),
                    "runs": runs,
                    "rate": runs / interval,
                    "interval": interval,
                    "error_pct": 100.0 * error_rate if error_rate is not None else 0.0,
                    "errors": errors,
                    "failed": outcomes["failed"],
                    "recent_failed": max(recent, 0),
                    "succeeded_after_retry": recovered.get(name, 0),
                    "p50": p50,
                    "p95": p95,
                    "p99": p99,
                    "queue_wait_p95": waits.get(name),
                    "retries": retries,
                    "dead_letters": dead,
                }
            )
        items.sort(key=lambda item: (-int(item["runs"]), str(item["actor"])))
        return items

    def _recent(self) -> dict[str, Any]:
        """What the runs did over the last ``RECENT_INTERVAL`` seconds (and the minute under way)."""
        now = self._clock()
        start = now // MIN_STEP * MIN_STEP - RECENT_INTERVAL
        data = self._data_since(start)
        row = (
            self._conn()
            .execute(
                "SELECT SUM(runs), SUM(errors), SUM(retries), SUM(dead_letters) FROM run_stats"
                " WHERE minute >= ?",
                (int(start),),
            )
            .fetchone()
        )
        runs, errors, retries, dead = (value or 0 for value in row)
        since = max(start, data) if data is not None else start
        interval = max(now - since, 1.0)
        return {
            "since": since,
            "interval": interval,
            "runs": runs,
            "throughput": runs / interval,
            **_outcomes(runs, errors, retries, dead),
        }

    def _queue_wait_p95(self, window: float, actor: str | None) -> dict[str, float | None]:
        """The 95th percentile queue wait of each actor, from the queue-wait histograms the
        workers export: what each cumulative series added within the window (all of it when the
        series started within the window), and the sum of delta points."""
        since = int((self._clock() - window) * _NS)
        metric = semconv.MESSAGE_QUEUE_WAIT.name
        conn = self._conn()
        # Of a cumulative series only its first and last points within the window matter; every
        # point of a delta series does. Each is an index lookup by series.
        delta_ids: list[int] = []
        first_ids: dict[int, int] = {}
        last_ids: dict[int, int] = {}
        for series, temporality in conn.execute(
            "SELECT series, temporality FROM metric_series WHERE name = ? AND last_ns >= ?", (metric, since)
        ).fetchall():
            in_window = "FROM metric_points WHERE series = ? AND time_ns >= ?"
            if temporality == 1:
                delta_ids += [row[0] for row in conn.execute(f"SELECT id {in_window}", (series, since))]
                continue
            for order, ids in (("", first_ids), (" DESC", last_ids)):
                row = conn.execute(
                    f"SELECT id {in_window} ORDER BY time_ns{order} LIMIT 1", (series, since)
                ).fetchone()
                if row is not None:
                    ids[series] = row[0]
        wanted = [*delta_ids, *first_ids.values(), *last_ids.values()]
        points: dict[int, tuple[Any, ...]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for row_id, actor_name, start_ns, bounds, counts in conn.execute(
                "SELECT id, actor, start_ns, bounds, bucket_counts FROM metric_points"
                f" WHERE id IN ({','.join('?' * len(chunk))}) AND kind = 'histogram' AND actor IS NOT NULL",
                chunk,
            ):
                if actor is None or actor_name == actor:
                    points[row_id] = (actor_name, start_ns, json.loads(bounds), json.loads(counts))
        deltas: dict[str, tuple[list[float], list[int]]] = {}
        for row_id in delta_ids:
            if row_id in points:
                name, _, bounds, counts = points[row_id]
                _merge(deltas, name, bounds, counts)
        for series, last_id in last_ids.items():
            if last_id not in points:
                continue
            name, start_ns, bounds, counts = points[last_id]
            first = points.get(first_ids.get(series, last_id), points[last_id])
            # A series that started within the window counts whole; an older one counts what it
            # added since its first point in the window.
            comparable = first[1:3] == (start_ns, bounds) and len(first[3]) == len(counts)
            if (start_ns or 0) < since and first is not points[last_id] and comparable:
                counts = [now - then for now, then in zip(counts, first[3], strict=True)]
            _merge(deltas, name, bounds, counts)
        return {name: _histogram_quantile(bounds, counts, 0.95) for name, (bounds, counts) in deltas.items()}

    def overview(self, window: float) -> dict[str, Any]:
        """Throughput, outcomes and p95 over time; depth and oldest age over time; live workers;
        what the last minutes did; the actors failing now.

        The series start where the data does when the store is younger than the window, and
        their last bucket, still filling, is marked ``partial``.

        Parameters:
          window(float): How far back to look, in seconds.
        """
        now = self._clock()
        covered, data = self._covered(window)
        step = step_for(now - covered)
        since = int((now - window) * _NS)
        row = (
            self._conn()
            .execute(
                "SELECT workers FROM broker_workers WHERE time_ns >= ? ORDER BY time_ns DESC LIMIT 1",
                (since,),
            )
            .fetchone()
        )
        # Failing now first (failures for good in the last minutes), then over the window.
        worst = sorted(
            (item for item in self._actor_rows(window) if item["errors"]),
            key=lambda item: (-int(item["recent_failed"]), -float(item["error_pct"]), -int(item["runs"])),
        )
        depth = self.queue_history(window)
        return {
            "step": step,
            "since": data if data is None else max(covered, data),
            "series": self._series(window, step, None),
            "recent": self._recent(),
            "depth_step": depth["step"],
            "depth": depth["items"],
            "oldest_age": depth["oldest_age"],
            "workers": row[0] if row else None,
            "worker_processes": self._live_workers(),
            "worst_actors": worst[:WORST_ACTORS],
        }

    def actors(self, window: float) -> dict[str, Any]:
        """One row per actor that ran within the window, busiest first.

        Parameters:
          window(float): How far back to look, in seconds.
        """
        covered, _ = self._covered(window)
        return {"interval": max(self._clock() - covered, 1.0), "items": self._actor_rows(window)}

    def actor(self, name: str, window: float) -> dict[str, Any] | None:
        """An actor's figures, series and latest runs; ``None`` when it has not run in the window.

        Parameters:
          name(str): The actor's name.
          window(float): How far back to look, in seconds.
        """
        rows = self._actor_rows(window, name)
        if not rows:
            return None
        covered, _ = self._covered(window)
        step = step_for(self._clock() - covered)
        runs = self.runs(RunFilter(actor=name, since=self._clock() - window, limit=RECENT_RUNS))
        return {
            "actor": name,
            "step": step,
            "since": covered,
            "stats": rows[0],
            "series": self._series(window, step, name),
            "recent_runs": runs["items"],
        }

    # -- Runs and traces --------------------------------------------------------------------------

    def runs(self, query: RunFilter) -> dict[str, Any]:
        """Task executions, newest first, a page at a time.

        Parameters:
          query(RunFilter): Which runs, and which page.

        Raises:
          InvalidQuery: When the status, limit or cursor is not acceptable.
        """
        if not 1 <= query.limit <= MAX_RUNS_LIMIT:
            raise InvalidQuery(f"limit must be between 1 and {MAX_RUNS_LIMIT}")
        where = ["operation = 'process'"]
        params: list[Any] = []
        if query.actor:
            where.append("actor = ?")
            params.append(query.actor)
        if query.queue:
            where.append("queue = ?")
            params.append(query.queue)
        if query.status:
            if query.status not in RUN_STATUSES:
                raise InvalidQuery(f"status must be one of {', '.join(RUN_STATUSES)}")
            where.append(RUN_STATUSES[query.status])
        if query.since is not None:
            where.append("start_ns >= ?")
            params.append(int(query.since * _NS))
        if query.until is not None:
            where.append("start_ns < ?")
            params.append(int(query.until * _NS))
        if query.cursor:
            where.append("(start_ns, id) < (?, ?)")
            params.extend(_parse_cursor(query.cursor))
        if query.text:
            rows = self._search(query.text.strip(), query, where, params)
        else:
            rows = self._select_runs(where, params, query.limit)
        page = rows[: query.limit]
        next_cursor = f"{page[-1][7]}:{page[-1][0]}" if len(rows) > query.limit else None
        requeued = self._requeued(page)
        return {
            "items": [_run_item(row, row[0] in requeued) for row in page],
            "next_cursor": next_cursor,
        }

    def _requeued(self, rows: list[tuple[Any, ...]]) -> set[int]:
        """The runs among ``rows`` made after their message was requeued from the dead-letter
        queue: an earlier run of the same message had the same or a later attempt number."""
        ids = sorted({row[10] for row in rows if row[10]})
        earlier: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for message_id, start_ns, row_id, attempt in self._conn().execute(
                "SELECT message_id, start_ns, id, attempt FROM spans"
                f" WHERE message_id IN ({','.join('?' * len(chunk))}) AND operation = 'process'",
                chunk,
            ):
                earlier[message_id].append((start_ns, row_id, attempt or 1))
        found = set()
        for row in rows:
            key = (row[7], row[0])
            attempt = row[9] or 1
            if any((s, i) < key and a >= attempt for s, i, a in earlier.get(row[10], ())):
                found.add(row[0])
        return found

    def _select_runs(self, where: list[str], params: list[Any], limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit + 1`` runs matching every condition, newest first."""
        return (
            self._conn()
            .execute(
                "SELECT id, trace_id, span_id, actor, queue, status_code, error_type, start_ns, end_ns,"
                f" attempt, message_id, service, instance, {_RETRIED} AS retried, {_DEAD} AS dead FROM spans"
                f" WHERE {' AND '.join(where)} ORDER BY start_ns DESC, id DESC LIMIT ?",
                [*params, limit + 1],
            )
            .fetchall()
        )

    def _search(
        self, text: str, query: RunFilter, where: list[str], params: list[Any]
    ) -> list[tuple[Any, ...]]:
        """Runs matching ``text``: each kind of match is its own indexed query (an id exactly; an
        actor whose name contains it; a failed run whose exception type or message contains it),
        and the newest of their results are merged."""
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
        searches: list[tuple[str, list[Any]]] = [
            (
                "id IN (SELECT id FROM spans WHERE trace_id = ? UNION ALL"
                " SELECT id FROM spans WHERE message_id = ?)",
                [text.lower(), text],
            )
        ]
        prefix = _id_prefix(text)
        if prefix is not None:
            # The short ids the pages and the CLI show: ranges over the id indexes.
            searches.append(
                (
                    "id IN (SELECT id FROM spans WHERE trace_id >= ? AND trace_id < ? UNION ALL"
                    " SELECT id FROM spans WHERE message_id >= ? AND message_id < ?)",
                    [prefix.lower(), prefix.lower() + _MAX_CHAR, prefix, prefix + _MAX_CHAR],
                )
            )
        actors = [
            row[0]
            for row in self._conn().execute(
                "SELECT DISTINCT actor FROM run_stats WHERE actor LIKE ? ESCAPE '\\'", (pattern,)
            )
        ]
        if actors:
            searches.append((f"actor IN ({','.join('?' * len(actors))})", actors))
        if query.status not in ("ok", "succeeded_after_retry"):
            searches.append(
                (
                    f"status_code = {_STATUS_ERROR} AND (error_type LIKE ? ESCAPE '\\'"
                    " OR error_message LIKE ? ESCAPE '\\')",
                    [pattern, pattern],
                )
            )
        found: dict[int, tuple[Any, ...]] = {}
        for condition, values in searches:
            for row in self._select_runs([*where, condition], [*params, *values], query.limit):
                found[row[0]] = row
        return sorted(found.values(), key=lambda row: (row[7], row[0]), reverse=True)[: query.limit + 1]

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """Every stored span and log record of a trace; ``None`` when none is stored.

        Parameters:
          trace_id(str): 32 hexadecimal digits.

        Raises:
          InvalidQuery: When ``trace_id`` is not 32 hexadecimal digits.
        """
        trace_id = trace_id.lower()
        if not _TRACE_ID.match(trace_id):
            raise InvalidQuery("trace id must be 32 hexadecimal digits")
        conn = self._conn()
        spans = conn.execute(
            "SELECT span_id, parent_span_id, name, kind, service, start_ns, end_ns, status_code,"
            " status_message, attributes, events, links FROM spans WHERE trace_id = ?"
            " ORDER BY start_ns, id",
            (trace_id,),
        ).fetchall()
        logs = conn.execute(
            "SELECT time_ns, severity_number, severity_text, body, span_id, attributes FROM logs"
            " WHERE trace_id = ? ORDER BY time_ns, id",
            (trace_id,),
        ).fetchall()
        if not spans and not logs:
            return None
        return {
            "trace_id": trace_id,
            "spans": [_span_item(row) for row in spans],
            "logs": [
                {
                    "time": time_ns / _NS,
                    "severity": _severity(number, text),
                    "body": body,
                    "span_id": span_id,
                    "attributes": _loads(attrs, {}),
                }
                for time_ns, number, text, body, span_id, attrs in logs
            ],
        }

    # -- Queues and processes ---------------------------------------------------------------------

    def _depth(self, window: float, step: int, queue_name: str | None) -> list[dict[str, Any]]:
        since = int((self._clock() - window) * _NS)
        where = "time_ns >= ?"
        params: list[Any] = [since]
        if queue_name:
            where += " AND queue = ?"
            params.append(queue_name)
        step_ns = step * _NS
        return [
            {"t": float(t), "queue": name, "messaging_system": system, "state": state, "value": value}
            for t, name, system, state, value in self._conn().execute(
                f"SELECT time_ns / {step_ns} * {step} AS t, queue, messaging_system, state, MAX(value)"
                f" FROM queue_depth WHERE {where} GROUP BY t, queue, messaging_system, state"
                " ORDER BY t, queue, messaging_system, state",
                params,
            )
        ]

    def queue_history(self, window: float, queue_name: str | None = None) -> dict[str, Any]:
        """Depth per queue and state, and the age of each queue's oldest ready message, over the
        window (the largest value of each step).

        The step follows the broker snapshots (every few seconds), not the per-minute rollups,
        so that a backlog of less than a minute shows as more than a dot. Each item names its
        queue's library (``messaging_system``): a name both libraries use is two histories.

        Parameters:
          window(float): How far back to look, in seconds.
          queue_name(str|None): Only this queue.
        """
        row = (
            self._conn()
            .execute(
                "SELECT MIN(time_ns) FROM queue_depth WHERE time_ns >= ?",
                (int((self._clock() - window) * _NS),),
            )
            .fetchone()
        )
        first = row[0] / _NS if row and row[0] is not None else None
        step = depth_step_for(self._clock() - first if first is not None else window)
        items = self._depth(window, step, queue_name)
        return {
            "step": step,
            "since": first,
            "items": [item for item in items if item["state"] != OLDEST_AGE_STATE],
            "oldest_age": [
                {
                    "t": item["t"],
                    "queue": item["queue"],
                    "messaging_system": item["messaging_system"],
                    "value": item["value"],
                }
                for item in items
                if item["state"] == OLDEST_AGE_STATE
            ],
        }

    def _live_workers(self) -> int | None:
        """Worker processes heard from lately, from their telemetry; ``None`` when none reports."""
        items = self.processes(PROCESS_LIVENESS_WINDOW)["items"]
        if not any(item["kind"] == WORKER for item in items):
            return None
        return sum(1 for item in items if item["kind"] == WORKER and item["live"])

    def processes(self, window: float) -> dict[str, Any]:
        """Each process that sent telemetry within the window: whether it is a worker (it ran
        tasks) or a producer, its host and pid, CPU, memory and threads now and over the window,
        the queues it serves and the messages it is running now.

        A process is live while its reports keep coming: heard from within a few of its own
        report intervals.

        Parameters:
          window(float): How far back to look, in seconds.
        """
        now = self._clock()
        since = int((now - window) * _NS)
        conn = self._conn()
        names = (*CPU_UTILIZATION, *CPU_TIME, *MEMORY, *THREADS)
        latest: dict[tuple[str, str], dict[str, dict[str, tuple[int, float]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        readings: dict[tuple[str, str], dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
        for name, service, instance, time_ns, value, attrs in conn.execute(
            "SELECT name, service, instance, time_ns, value, attributes FROM metric_points"
            f" WHERE name IN ({','.join('?' * len(names))}) AND time_ns >= ? ORDER BY time_ns",
            [*names, since],
        ):
            key = (service or "", instance or "")
            latest[key][name][attrs] = (time_ns, value)
            reading = readings[key][time_ns]
            if name in CPU_TIME:
                reading["cpu_time"] = reading.get("cpu_time", 0.0) + (value or 0.0)
            elif name in CPU_UTILIZATION:
                reading["cpu"] = reading.get("cpu", 0.0) + 100.0 * (value or 0.0)
            elif name == MEMORY[0] or (name == MEMORY[1] and json.loads(attrs).get("type") == "rss"):
                reading["rss"] = value or 0.0
        activity = self._activity(since)
        hosts = self._instances(since)
        keys = set(latest) | set(activity) | set(hosts)
        items = []
        for key in keys:
            service, instance = key
            by_name = latest.get(key, {})
            act = activity.get(key, {})
            seen = [t for series in by_name.values() for t, _ in series.values()]
            times = sorted(readings.get(key, {}))
            host = hosts.get(key, {})
            last_seen = max([*(t / _NS for t in seen), act.get("last", 0.0), host.get("last", 0) / _NS])
            interval = _median_gap(times) or DEFAULT_REPORT_INTERVAL
            items.append(
                {
                    "service": service,
                    "instance": instance,
                    "host": host.get("host"),
                    "pid": host.get("pid"),
                    "kind": _process_kind(act, host.get("command")),
                    "first_seen": min([*(t / _NS for t in times[:1]), act.get("first", last_seen)]),
                    "last_seen": last_seen,
                    "live": now - last_seen <= LIVE_REPORTS * interval + LIVE_SLACK,
                    "report_interval": interval,
                    "cpu_percent": _cpu_percent(by_name, _cpu_times(readings.get(key, {}))),
                    "memory_rss_bytes": _memory(by_name),
                    "threads": _first_total(by_name, THREADS),
                    "queues": sorted(act.get("queues", ())),
                    "running": act.get("running", []),
                    "runs": act.get("runs", 0),
                    "failed": act.get("failed", 0),
                    "history": _history(readings.get(key, {})),
                }
            )
        items.sort(key=lambda item: (item["service"], item["host"] or "", item["pid"] or 0, item["instance"]))
        return {"items": items}

    def _activity(self, since: int) -> dict[tuple[str, str], dict[str, Any]]:
        """What each process did within the window from its spans (runs and sends) and its
        in-flight gauge (what it runs now)."""
        found: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
        for service, instance, operation, queue_name, runs, failed, first, last in self._conn().execute(
            "SELECT service, instance, operation, queue, COUNT(*),"
            f" SUM(status_code = {_STATUS_ERROR}), MIN(start_ns), MAX(end_ns) FROM spans"
            " WHERE start_ns >= ? AND operation IN (?, ?) GROUP BY service, instance, operation, queue",
            (since, semconv.OPERATION_PROCESS, semconv.OPERATION_SEND),
        ):
            entry = found[(service or "", instance or "")]
            entry["first"] = min(entry.get("first", first / _NS), first / _NS)
            entry["last"] = max(entry.get("last", 0.0), last / _NS)
            if operation == semconv.OPERATION_PROCESS:
                entry.setdefault("queues", set()).add(queue_name)
                entry["runs"] = entry.get("runs", 0) + runs
                entry["failed"] = entry.get("failed", 0) + (failed or 0)
        metric = semconv.MESSAGES_IN_FLIGHT.name
        current: dict[tuple[str, str], dict[str, tuple[int, float]]] = defaultdict(dict)
        for service, instance, attrs, time_ns, value in self._conn().execute(
            "SELECT service, instance, attributes, time_ns, value FROM metric_points"
            " WHERE name = ? AND time_ns >= ? ORDER BY time_ns",
            (metric, since),
        ):
            current[(service or "", instance or "")][attrs] = (time_ns, value or 0.0)
        for key, series in current.items():
            entry = found[key]
            running = []
            for attrs, (time_ns, value) in series.items():
                labels = json.loads(attrs)
                queue_name = labels.get(semconv.MESSAGING_DESTINATION_NAME)
                if queue_name:
                    entry.setdefault("queues", set()).add(queue_name)
                entry["last"] = max(entry.get("last", 0.0), time_ns / _NS)
                if value > 0:
                    running.append(
                        {
                            "actor": labels.get(semconv.DRAMATIQ_ACTOR_NAME)
                            or labels.get(semconv.CELERY_TASK_NAME),
                            "queue": queue_name,
                            "count": int(value),
                        }
                    )
            entry["running"] = sorted(running, key=lambda item: (str(item["actor"]), str(item["queue"])))
        return found

    def _instances(self, since: int) -> dict[tuple[str, str], dict[str, Any]]:
        """Host and pid of each process, from the resource it reported."""
        return {
            (service or "", instance or ""): {"host": host, "pid": pid, "command": command, "last": last_ns}
            for service, instance, host, pid, command, last_ns in self._conn().execute(
                "SELECT service, instance, host, pid, command, last_ns FROM instances WHERE last_ns >= ?",
                (since,),
            )
        }


def _outcomes(runs: int, errors: int, retries: int, dead: int) -> dict[str, Any]:
    """How attempts ended: retried (failed, tried again), dead-lettered, failed for good (dead
    letters included), and the error rate of the messages that are done (an attempt that is
    retried has not failed yet)."""
    failed = max(errors - retries, 0)
    finished = runs - retries
    return {
        "retried": retries,
        "dead_lettered": dead,
        "failed": failed,
        "error_rate": failed / finished if finished > 0 else None,
    }


def _process_kind(activity: dict[str, Any], command: str | None) -> str | None:
    """``worker`` for a process that ran tasks (or is a task library's worker command),
    ``producer`` for one that only sent messages, ``None`` when it did neither yet."""
    if activity.get("queues") or activity.get("running"):
        return WORKER
    if command and Path(command).name in WORKER_COMMANDS:
        return WORKER
    return PRODUCER if activity else None


def _cpu_times(readings: dict[int, dict[str, float]]) -> dict[int, float]:
    return {t: reading["cpu_time"] for t, reading in readings.items() if "cpu_time" in reading}


def _median_gap(times: list[int]) -> float | None:
    """The median time between consecutive readings, in seconds."""
    gaps = sorted((b - a) / _NS for a, b in itertools.pairwise(times) if b > a)
    return gaps[len(gaps) // 2] if gaps else None


def _history(readings: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """A process's CPU (%) and resident memory at each report, oldest first."""
    history: list[dict[str, Any]] = []
    previous: tuple[int, float] | None = None
    for time_ns in sorted(readings):
        reading = readings[time_ns]
        cpu = reading.get("cpu")
        if cpu is None and "cpu_time" in reading:
            if previous is not None and time_ns > previous[0]:
                cpu = 100.0 * max(reading["cpu_time"] - previous[1], 0.0) / ((time_ns - previous[0]) / _NS)
            previous = (time_ns, reading["cpu_time"])
        history.append({"t": time_ns / _NS, "cpu_percent": cpu, "memory_rss_bytes": reading.get("rss")})
    return history


def depth_step_for(window: float) -> int:
    """The step of a depth series over ``window`` seconds: about ``SERIES_POINTS`` points, never
    finer than the broker snapshots.

    Parameters:
      window(float): The span of the series, in seconds.
    """
    wanted = window / SERIES_POINTS
    return next((step for step in DEPTH_STEPS if step >= wanted), DEPTH_STEPS[-1])


def _merge(
    into: dict[str, tuple[list[float], list[int]]], name: str, bounds: list[float], counts: list[int]
) -> None:
    if name not in into:
        into[name] = (list(bounds), list(counts))
        return
    known_bounds, known_counts = into[name]
    if known_bounds == bounds and len(known_counts) == len(counts):
        into[name] = (known_bounds, [a + b for a, b in zip(known_counts, counts, strict=False)])


def _first_total(by_name: dict[str, dict[str, tuple[int, float]]], names: Iterable[str]) -> float | None:
    for name in names:
        if name in by_name:
            return sum(value for _, value in by_name[name].values())
    return None


def _cpu_percent(
    by_name: dict[str, dict[str, tuple[int, float]]], cpu_times: dict[int, float]
) -> float | None:
    utilization = _first_total(by_name, CPU_UTILIZATION)
    if utilization is not None:
        return 100.0 * utilization
    if len(cpu_times) < 2:
        return None
    (t0, busy0), (t1, busy1) = sorted(cpu_times.items())[-2:]
    return 100.0 * max(busy1 - busy0, 0.0) / ((t1 - t0) / _NS)


def _memory(by_name: dict[str, dict[str, tuple[int, float]]]) -> float | None:
    if MEMORY[0] in by_name:
        return _first_total(by_name, MEMORY[:1])
    for attrs, (_, value) in by_name.get(MEMORY[1], {}).items():
        if json.loads(attrs).get("type") == "rss":
            return value
    return None


#: The largest value of an SQLite integer.
_MAX_INTEGER = 2**63 - 1


def _parse_cursor(cursor: str) -> tuple[int, int]:
    try:
        start, _, row_id = cursor.partition(":")
        return min(int(start), _MAX_INTEGER), min(int(row_id), _MAX_INTEGER)
    except ValueError:
        raise InvalidQuery("cursor must be a next_cursor returned by a previous page") from None


def _run_state(failed: bool, attempt: int | None, retried: bool, dead: bool) -> str:
    if failed:
        return "dead_lettered" if dead else "retried" if retried else "failed"
    return "succeeded_after_retry" if (attempt or 1) > 1 else "ok"


def _id_prefix(text: str) -> str | None:
    """The id prefix in ``text`` when it looks like a shortened message or trace id ("5f1c2e9a-41…")."""
    prefix = text.rstrip("…").removesuffix("...")
    return prefix if _ID_PREFIX.match(prefix) else None


def _run_item(row: tuple[Any, ...], requeued: bool = False) -> dict[str, Any]:
    _, trace_id, span_id, actor, queue_name, status_code, error_type, start_ns, end_ns, attempt = row[:10]
    message_id, service, instance, retried, dead = row[10:]
    failed = status_code == _STATUS_ERROR
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "actor": actor,
        "queue": queue_name,
        "status": "error" if failed else "ok",
        "state": _run_state(failed, attempt, bool(retried), bool(dead)),
        "requeued": requeued,
        "error_type": error_type,
        "duration": (end_ns - start_ns) / _NS,
        "attempt": attempt,
        "message_id": message_id,
        "time": start_ns / _NS,
        "service": service,
        "instance": instance,
    }


def _span_item(row: tuple[Any, ...]) -> dict[str, Any]:
    span_id, parent, name, kind, service, start_ns, end_ns, status_code, message, attrs, events, links = row
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "name": name,
        "kind": _KINDS.get(kind, "INTERNAL"),
        "service": service,
        "start": start_ns / _NS,
        "end": end_ns / _NS,
        "duration": (end_ns - start_ns) / _NS,
        "status": _STATUSES.get(status_code, "UNSET"),
        "status_message": message,
        "attributes": _loads(attrs, {}),
        "events": _loads(events, []),
        "links": _loads(links, []),
    }
