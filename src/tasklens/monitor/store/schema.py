"""The embedded store's tables and indexes, and how its connections are opened.

One SQLite database in WAL mode: one writer connection (owned by the writer thread) and any number
of reader connections, which never block the writer nor each other. Times are Unix nanoseconds
(``*_ns`` columns); ``minute`` columns are Unix seconds at the start of a minute.

A metric point's ``series`` is a 64-bit hash of its name, service, instance and attributes;
``metric_series`` lists each series with when it was last seen, so that the first and last
points of every series within a window are a few index lookups, however long the window.

Runs (``process {queue}`` spans) are also counted per minute, actor and queue in ``run_stats``,
with their durations in log-scale bins in ``run_durations``, so that the dashboard's rates and
percentiles read a few thousand rollup rows instead of every span.

``queue_depth`` holds each broker snapshot's depth per queue, library (``messaging_system``:
a queue name both libraries use is two queues) and state.

``instances`` names each process that sent telemetry (``service.instance.id``) with the host,
pid and command of its resource, and when it was first and last heard from.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["OLDEST_AGE_STATE", "SCHEMA_VERSION", "connect", "create_schema"]

#: Bumped when a table changes shape; a store with another version is rebuilt from scratch.
SCHEMA_VERSION = 5

#: The ``queue_depth`` state under which a broker snapshot stores the age of the queue's oldest
#: ready message, in seconds.
OLDEST_AGE_STATE = "oldest_age"

#: How long a connection waits for a lock held by another connection, in milliseconds.
BUSY_TIMEOUT_MS = 5000

#: Page cache of each connection, in KiB (a negative ``cache_size`` is in KiB).
CACHE_KIB = 65536

#: Largest size the write-ahead log is truncated back to after a checkpoint, in bytes.
WAL_SIZE_LIMIT = 64 * 1024 * 1024

_TABLES = """
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    service TEXT,
    instance TEXT,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    status_message TEXT,
    operation TEXT,
    actor TEXT,
    queue TEXT,
    message_id TEXT,
    attempt INTEGER,
    error_type TEXT,
    error_message TEXT,
    attributes TEXT NOT NULL,
    events TEXT,
    links TEXT
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns);
CREATE INDEX IF NOT EXISTS spans_message ON spans (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_start ON spans (start_ns) WHERE operation = 'process';
CREATE INDEX IF NOT EXISTS runs_actor ON spans (actor, start_ns) WHERE operation = 'process';
CREATE INDEX IF NOT EXISTS runs_queue ON spans (queue, start_ns) WHERE operation = 'process';
CREATE INDEX IF NOT EXISTS runs_failed ON spans (start_ns, error_type, error_message)
    WHERE operation = 'process' AND status_code = 2;
CREATE INDEX IF NOT EXISTS runs_failed_actor ON spans (actor, start_ns)
    WHERE operation = 'process' AND status_code = 2;
CREATE INDEX IF NOT EXISTS runs_failed_queue ON spans (queue, start_ns)
    WHERE operation = 'process' AND status_code = 2;

CREATE TABLE IF NOT EXISTS run_stats (
    minute INTEGER NOT NULL,
    actor TEXT NOT NULL,
    queue TEXT NOT NULL,
    runs INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    dead_letters INTEGER NOT NULL,
    PRIMARY KEY (minute, actor, queue)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_stats_actor ON run_stats (actor, minute);

CREATE TABLE IF NOT EXISTS run_durations (
    minute INTEGER NOT NULL,
    actor TEXT NOT NULL,
    queue TEXT NOT NULL,
    bin INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (minute, actor, queue, bin)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_durations_actor ON run_durations (actor, minute);

CREATE TABLE IF NOT EXISTS metric_points (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    start_ns INTEGER,
    name TEXT NOT NULL,
    series INTEGER NOT NULL,
    kind TEXT NOT NULL,
    temporality INTEGER,
    service TEXT,
    instance TEXT,
    actor TEXT,
    attributes TEXT NOT NULL,
    value REAL,
    count INTEGER,
    sum REAL,
    bounds TEXT,
    bucket_counts TEXT
);
CREATE INDEX IF NOT EXISTS metric_points_name ON metric_points (name, time_ns);
CREATE INDEX IF NOT EXISTS metric_points_series ON metric_points (series, time_ns);

CREATE TABLE IF NOT EXISTS metric_series (
    series INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    temporality INTEGER,
    last_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_series_name ON metric_series (name, last_ns);
CREATE INDEX IF NOT EXISTS metric_points_time ON metric_points (time_ns);

CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    trace_id TEXT,
    span_id TEXT,
    severity_number INTEGER,
    severity_text TEXT,
    body TEXT,
    service TEXT,
    instance TEXT,
    attributes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns);

CREATE TABLE IF NOT EXISTS queue_depth (
    time_ns INTEGER NOT NULL,
    queue TEXT NOT NULL,
    messaging_system TEXT NOT NULL,
    state TEXT NOT NULL,
    value INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_depth_time
    ON queue_depth (time_ns, queue, messaging_system, state, value);
CREATE INDEX IF NOT EXISTS queue_depth_queue ON queue_depth (queue, time_ns);

CREATE TABLE IF NOT EXISTS broker_workers (
    time_ns INTEGER NOT NULL,
    workers INTEGER
);
CREATE INDEX IF NOT EXISTS broker_workers_time ON broker_workers (time_ns);

CREATE TABLE IF NOT EXISTS instances (
    service TEXT NOT NULL,
    instance TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    command TEXT,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    UNIQUE (service, instance)
);
CREATE INDEX IF NOT EXISTS instances_last ON instances (last_ns);
"""

#: Every table, for retention and for rebuilding a store of another schema version.
TABLES: tuple[str, ...] = (
    "spans",
    "run_stats",
    "run_durations",
    "metric_points",
    "metric_series",
    "logs",
    "queue_depth",
    "broker_workers",
    "instances",
)


def connect(path: Path | str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection to the store with the pragmas every connection needs.

    Parameters:
      path(Path|str): The database file.
      readonly(bool): Whether the connection may only read.
    """
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables and indexes, dropping those of another schema version first.

    Parameters:
      conn(sqlite3.Connection): A writable connection.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.executescript(_TABLES)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
