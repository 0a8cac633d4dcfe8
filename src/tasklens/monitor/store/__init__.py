"""The monitor's embedded telemetry store: spans, metric points, logs and broker snapshots.

One SQLite database in WAL mode, written by one thread and read by any number of connections.
SQLite ships with Python, needs no server, survives restarts, and in WAL mode lets the dashboard
read while ingest writes.

Usage::

    store = TelemetryStore.open(default_store_path(), RetentionPolicy(max_age=86400))
    store.writer.write_spans(span_rows(request))   # from the OTLP receiver
    store.reader.runs(RunFilter(status="error"))    # from the dashboard API
    store.close()
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import platformdirs

from tasklens.monitor.store.queries import InvalidQuery, RunFilter, StoreReader
from tasklens.monitor.store.retention import (
    DEFAULT_MAX_SIZE,
    DEFAULT_RETENTION,
    RetentionPolicy,
    parse_duration,
    parse_size,
)
from tasklens.monitor.store.rows import log_rows, metric_rows, span_rows
from tasklens.monitor.store.writer import StoreBusy, StoreWriter

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_RETENTION",
    "STORE_FILENAME",
    "InvalidQuery",
    "RetentionPolicy",
    "RunFilter",
    "StoreBusy",
    "StoreReader",
    "StoreWriter",
    "TelemetryStore",
    "default_store_path",
    "log_rows",
    "metric_rows",
    "parse_duration",
    "parse_size",
    "span_rows",
]

#: The database's file name inside the store directory.
STORE_FILENAME = "telemetry.db"


def default_store_path() -> Path:
    """Where the store lives unless ``--store`` says otherwise: the user's data directory."""
    return Path(platformdirs.user_data_dir("tasklens")) / STORE_FILENAME


class TelemetryStore:
    """The store's writer and reader, opened and closed together.

    Parameters:
      writer(StoreWriter): The started writer.
      reader(StoreReader): The reader of the same database.
    """

    def __init__(self, writer: StoreWriter, reader: StoreReader) -> None:
        self.writer = writer
        self.reader = reader

    @classmethod
    def open(
        cls,
        path: Path | str,
        retention: RetentionPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> TelemetryStore:
        """Open (creating when missing) the store at ``path`` and start its writer.

        Parameters:
          path(Path|str): The database file; its directory is created when missing.
          retention(RetentionPolicy|None): What to keep; one day and 1 GB when ``None``.
          clock(Callable[[], float]): Wall clock, in Unix seconds.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = StoreWriter(path, retention or RetentionPolicy(), clock=clock)
        writer.start()
        return cls(writer, StoreReader(path, clock=clock))

    @property
    def path(self) -> Path:
        """The database file."""
        return self.writer.path

    def close(self) -> None:
        """Commit what is queued and close every connection."""
        self.writer.close()
        self.reader.close()
