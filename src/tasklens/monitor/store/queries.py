"""What the dashboard asks the store: rates, percentiles, runs, traces, depth and processes.

A ``StoreReader`` answers each question of the dashboard data API (``docs/dashboard-api.md``)
with JSON-ready dicts. Rates, error rates and duration percentiles come from the per-minute run
rollups, so they cost the same with a thousand stored spans or a million; runs and traces come
from the spans table through its indexes. Each thread reads through its own connection, so
readers never wait for the writer or for each other.
"""

from __future__ import annotations

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
from tasklens.monitor.store.schema import connect

__all__ = ["InvalidQuery", "RunFilter", "StoreReader", "step_for"]

#: Points a chart gets across its window, at most.
SERIES_POINTS = 60
#: The finest step of a series: the rollups count runs per minute, in seconds.
MIN_STEP = 60
#: Most actors listed as the worst ones on the overview.
WORST_ACTORS = 5
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

    def _series(self, window: float, step: int, actor: str | None) -> list[dict[str, Any]]:
        first = int((self._clock() - window) // step * step)
        last = int(self._clock() // step * step)
        where = "minute >= ?"
        params: list[Any] = [first]
        if actor is not None:
            where += " AND actor = ?"
            params.append(actor)
        totals = {
            t: (runs, errors)
            for t, runs, errors in self._conn().execute(
                f"SELECT minute / {step} * {step} AS t, SUM(runs), SUM(errors) FROM run_stats"
                f" WHERE {where} GROUP BY t",
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
            runs, errors = totals.get(t, (0, 0))
            series.append(
                {
                    "t": float(t),
                    "runs": runs,
                    "errors": errors,
                    "throughput": runs / step,
                    "error_rate": errors / runs if runs else 0.0,
                    "p95": quantiles(bins.get(t, {}), (0.95,))[0],
                }
            )
        return series

    def _actor_rows(self, window: float, actor: str | None = None) -> list[dict[str, Any]]:
        first = int((self._clock() - window) // MIN_STEP * MIN_STEP)
        where = "minute >= ?"
        params: list[Any] = [first]
        if actor is not None:
            where += " AND actor = ?"
            params.append(actor)
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        queues: dict[str, dict[str, int]] = defaultdict(dict)
        for name, queue_name, runs, errors, retries, dead in self._conn().execute(
            "SELECT actor, queue, SUM(runs), SUM(errors), SUM(retries), SUM(dead_letters)"
            f" FROM run_stats WHERE {where} GROUP BY actor, queue",
            params,
        ):
            row = totals[name]
            row[0] += runs
            row[1] += errors
            row[2] += retries
            row[3] += dead
            queues[name][queue_name] = runs
        bins: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for name, bin_, count in self._conn().execute(
            f"SELECT actor, bin, SUM(count) FROM run_durations WHERE {where} GROUP BY actor, bin", params
        ):
            bins[name][bin_] += count
        waits = self._queue_wait_p95(window, actor)
        items: list[dict[str, Any]] = []
        for name, (runs, errors, retries, dead) in totals.items():
            p50, p95, p99 = quantiles(bins[name], (0.5, 0.95, 0.99))
            items.append(
                {
                    "actor": name,
                    "queue": max(queues[name], key=queues[name].__getitem__),
                    "runs": runs,
                    "rate": runs / window,
                    "error_pct": 100.0 * errors / runs if runs else 0.0,
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
        """Throughput, error rate and p95 over time; depth over time; live workers; worst actors.

        Parameters:
          window(float): How far back to look, in seconds.
        """
        step = step_for(window)
        since = int((self._clock() - window) * _NS)
        row = (
            self._conn()
            .execute(
                "SELECT workers FROM broker_workers WHERE time_ns >= ? ORDER BY time_ns DESC LIMIT 1",
                (since,),
            )
            .fetchone()
        )
        worst = sorted(
            self._actor_rows(window), key=lambda item: (-float(item["error_pct"]), -int(item["runs"]))
        )
        return {
            "step": step,
            "series": self._series(window, step, None),
            "depth": self._depth(window, step, None),
            "workers": row[0] if row else None,
            "worst_actors": worst[:WORST_ACTORS],
        }

    def actors(self, window: float) -> dict[str, Any]:
        """One row per actor that ran within the window, busiest first.

        Parameters:
          window(float): How far back to look, in seconds.
        """
        return {"items": self._actor_rows(window)}

    def actor(self, name: str, window: float) -> dict[str, Any] | None:
        """An actor's figures, series and latest runs; ``None`` when it has not run in the window.

        Parameters:
          name(str): The actor's name.
          window(float): How far back to look, in seconds.
        """
        rows = self._actor_rows(window, name)
        if not rows:
            return None
        step = step_for(window)
        runs = self.runs(RunFilter(actor=name, since=self._clock() - window, limit=RECENT_RUNS))
        return {
            "actor": name,
            "step": step,
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
        if query.status == "error":
            where.append(f"status_code = {_STATUS_ERROR}")
        elif query.status == "ok":
            where.append(f"status_code != {_STATUS_ERROR}")
        elif query.status:
            raise InvalidQuery("status must be ok or error")
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
        return {"items": [_run_item(row) for row in page], "next_cursor": next_cursor}

    def _select_runs(self, where: list[str], params: list[Any], limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit + 1`` runs matching every condition, newest first."""
        return (
            self._conn()
            .execute(
                "SELECT id, trace_id, span_id, actor, queue, status_code, error_type, start_ns, end_ns,"
                " attempt, message_id, service, instance FROM spans"
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
        actors = [
            row[0]
            for row in self._conn().execute(
                "SELECT DISTINCT actor FROM run_stats WHERE actor LIKE ? ESCAPE '\\'", (pattern,)
            )
        ]
        if actors:
            searches.append((f"actor IN ({','.join('?' * len(actors))})", actors))
        if query.status != "ok":
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
            {"t": float(t), "queue": name, "state": state, "value": value}
            for t, name, state, value in self._conn().execute(
                f"SELECT time_ns / {step_ns} * {step} AS t, queue, state, MAX(value) FROM queue_depth"
                f" WHERE {where} GROUP BY t, queue, state ORDER BY t, queue, state",
                params,
            )
        ]

    def queue_history(self, window: float, queue_name: str | None = None) -> dict[str, Any]:
        """Depth per queue and state over the window (the largest value of each step).

        Parameters:
          window(float): How far back to look, in seconds.
          queue_name(str|None): Only this queue.
        """
        return {"step": step_for(window), "items": self._depth(window, step_for(window), queue_name)}

    def processes(self, window: float) -> dict[str, Any]:
        """Each worker process that exported process metrics within the window: CPU, memory,
        threads.

        Parameters:
          window(float): How far back to look, in seconds.
        """
        since = int((self._clock() - window) * _NS)
        names = (*CPU_UTILIZATION, *CPU_TIME, *MEMORY, *THREADS)
        latest: dict[tuple[str, str], dict[str, dict[str, tuple[int, float]]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        cpu_times: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for name, service, instance, time_ns, value, attrs in self._conn().execute(
            "SELECT name, service, instance, time_ns, value, attributes FROM metric_points"
            f" WHERE name IN ({','.join('?' * len(names))}) AND time_ns >= ? ORDER BY time_ns",
            [*names, since],
        ):
            key = (service or "", instance or "")
            latest[key][name][attrs] = (time_ns, value)
            if name in CPU_TIME:
                cpu_times[key][time_ns] += value or 0.0
        items = [
            {
                "service": service,
                "instance": instance,
                "last_seen": max(t for series in by_name.values() for t, _ in series.values()) / _NS,
                "cpu_percent": _cpu_percent(by_name, cpu_times[(service, instance)]),
                "memory_rss_bytes": _memory(by_name),
                "threads": _first_total(by_name, THREADS),
            }
            for (service, instance), by_name in latest.items()
        ]
        items.sort(key=lambda item: (item["service"], item["instance"]))
        return {"items": items}


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


def _run_item(row: tuple[Any, ...]) -> dict[str, Any]:
    _, trace_id, span_id, actor, queue_name, status_code, error_type, start_ns, end_ns, attempt = row[:10]
    message_id, service, instance = row[10:]
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        "actor": actor,
        "queue": queue_name,
        "status": "error" if status_code == _STATUS_ERROR else "ok",
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
