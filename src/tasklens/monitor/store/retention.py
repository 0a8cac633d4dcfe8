"""Retention: the store keeps the newest data within an age and a size, dropping the oldest first.

``--retention 24h`` drops everything older than a day; ``--max-store-size 1GB`` drops the oldest
data until the pages in use fit. Space freed by deletes is reused by new rows, so the database
file stays near its limit instead of growing. Both run on the writer thread in small chunks, so
ingest goes on while old data is dropped.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_RETENTION",
    "MAX_RETENTION",
    "MAX_STORE_SIZE",
    "MIN_STORE_SIZE",
    "RetentionPolicy",
    "enforce_step",
    "parse_duration",
    "parse_size",
    "used_bytes",
]

#: How long data is kept when ``--retention`` is not given, in seconds (one day).
DEFAULT_RETENTION = 24 * 3600.0
#: How large the store may grow when ``--max-store-size`` is not given, in bytes (1 GB).
DEFAULT_MAX_SIZE = 1_000_000_000
#: Longest ``--retention``, in seconds (ten years): store times are nanoseconds in 64 bits.
MAX_RETENTION = 10 * 365 * 86400.0
#: Smallest ``--max-store-size``, in bytes: less would hardly hold the tables and their indexes.
MIN_STORE_SIZE = 1_000_000
#: Largest ``--max-store-size``, in bytes (1 PB).
MAX_STORE_SIZE = 10**15
#: Rows deleted from one table in one step; small enough that ingest is never held up long.
CHUNK_ROWS = 5000
#: When over its size, the store is trimmed to this fraction of it, so it is not trimmed again
#: at the very next write.
SIZE_HEADROOM = 0.9

_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")

#: Each table and the column telling how old a row is, with that column's unit in nanoseconds.
_TIME_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("spans", "start_ns", 1),
    ("logs", "time_ns", 1),
    ("metric_points", "time_ns", 1),
    ("queue_depth", "time_ns", 1),
    ("broker_workers", "time_ns", 1),
    ("metric_series", "last_ns", 1),
    ("instances", "last_ns", 1),
    ("run_stats", "minute", 1_000_000_000),
    ("run_durations", "minute", 1_000_000_000),
)


def parse_duration(text: str) -> float:
    """A duration such as ``24h``, ``90m``, ``7d`` or ``3600``, in seconds.

    Parameters:
      text(str): A number followed by an optional unit: s, m, h, d or w (seconds when none).

    Raises:
      ValueError: When ``text`` is not such a duration or is not positive.
    """
    match = _QUANTITY.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _DURATION_UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r}: use a positive number and s, m, h, d or w, like 24h")
    return float(match.group(1)) * _DURATION_UNITS[unit]


def parse_size(text: str) -> int:
    """A size such as ``1GB``, ``500MB`` or ``2GiB``, in bytes.

    Parameters:
      text(str): A number followed by an optional unit: B, kB, MB, GB, TB (powers of 1000) or
        KiB, MiB, GiB, TiB (powers of 1024); bytes when none.

    Raises:
      ValueError: When ``text`` is not such a size or is not positive.
    """
    match = _QUANTITY.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS or float(match.group(1)) <= 0:
        raise ValueError(f"invalid size {text!r}: use a positive number and B, kB, MB, GB or GiB, like 1GB")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


@dataclass(frozen=True)
class RetentionPolicy:
    """What the store keeps.

    Parameters:
      max_age(float|None): Oldest data kept, in seconds; ``None`` keeps data of any age.
      max_size(int|None): Most bytes of database pages in use; ``None`` for no limit.
    """

    max_age: float | None = DEFAULT_RETENTION
    max_size: int | None = DEFAULT_MAX_SIZE

    def __post_init__(self) -> None:
        if self.max_age is not None and not 0 < self.max_age <= MAX_RETENTION:
            raise ValueError(f"retention must be more than 0 and at most {MAX_RETENTION:.0f} s (10 years)")
        if self.max_size is not None and not 0 < self.max_size <= MAX_STORE_SIZE:
            raise ValueError(f"the store's size limit must be more than 0 and at most {MAX_STORE_SIZE} bytes")


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the database's pages that hold data (free pages excluded)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def _delete_before(conn: sqlite3.Connection, cutoff_ns: int, *, inclusive: bool = False) -> bool:
    """Delete up to ``CHUNK_ROWS`` rows of each table older than ``cutoff_ns``; whether any
    table had more."""
    more = False
    operator = "<=" if inclusive else "<"
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table, column, unit in _TIME_COLUMNS:
            cutoff = cutoff_ns // unit
            if unit != 1:
                # The per-minute rollups are small and have no rowid: delete the minutes that
                # ended before the cutoff at once.
                conn.execute(f"DELETE FROM {table} WHERE {column} + 60 <= ?", (cutoff,))
                continue
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE rowid IN "
                f"(SELECT rowid FROM {table} WHERE {column} {operator} ? LIMIT {CHUNK_ROWS})",
                (cutoff,),
            )
            more = more or cursor.rowcount >= CHUNK_ROWS
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return more


def _oldest_to_keep(conn: sqlite3.Connection, fraction: float) -> int | None:
    """The start of the span (else log, else metric point) below which ``fraction`` of them lie."""
    for table, column, _unit in _TIME_COLUMNS[:3]:
        total = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if total:
            offset = min(max(int(total * fraction), 1), CHUNK_ROWS, total) - 1
            row = conn.execute(
                f"SELECT {column} FROM {table} ORDER BY {column} LIMIT 1 OFFSET ?", (offset,)
            ).fetchone()
            return int(row[0])
    return None


def enforce_step(conn: sqlite3.Connection, policy: RetentionPolicy, now_ns: int) -> bool:
    """Delete one chunk of what the policy no longer keeps; whether more remains to delete.

    Parameters:
      conn(sqlite3.Connection): The writer's connection, outside any transaction.
      policy(RetentionPolicy): What to keep.
      now_ns(int): The current time, in Unix nanoseconds.
    """
    if policy.max_age is not None and _delete_before(conn, max(now_ns - int(policy.max_age * 1e9), 0)):
        return True
    if policy.max_size is None:
        return False
    used = used_bytes(conn)
    if used <= policy.max_size:
        return False
    fraction = (used - policy.max_size * SIZE_HEADROOM) / used
    cutoff = _oldest_to_keep(conn, fraction)
    if cutoff is None:
        return False
    _delete_before(conn, cutoff, inclusive=True)
    return used_bytes(conn) > policy.max_size * SIZE_HEADROOM
