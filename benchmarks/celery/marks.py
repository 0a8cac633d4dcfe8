"""The processing window of a worker, stamped by the tasks themselves across pool processes.

The worker's main process creates a :class:`WindowMarks` when it imports the app, before the
prefork pool forks, so that every pool process shares its counter and start stamps (shared
memory). Each task bumps the counter; the task that finishes the ``start_at``-th run stamps the
window's start, the one that finishes the ``end_at``-th writes the window to a file, which the
trial process waits for.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import psutil

__all__ = ["WindowMarks", "tree_cpu_seconds", "tree_rss_mib"]


def _tree(root: int) -> list[psutil.Process]:
    process = psutil.Process(root)
    return [process, *process.children(recursive=True)]


def tree_cpu_seconds(root: int) -> float:
    """User plus system CPU time of process ``root`` and all its live descendants, in seconds."""
    total = 0.0
    for process in _tree(root):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def tree_rss_mib(root: int) -> float:
    """Resident set size of process ``root`` and all its live descendants, in MiB."""
    total = 0
    for process in _tree(root):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / (1 << 20)


class WindowMarks:
    """Counts task runs in every process of one worker and records the timed window.

    Parameters:
      start_at(int): Index of the run whose end opens the window (the warm-up's last).
      end_at(int): Index of the run whose end closes it (the last task).
      path(Path): Where the window is written, as JSON: ``wall`` and ``cpu`` seconds, ``rss_mib``.
    """

    def __init__(self, start_at: int, end_at: int, path: Path) -> None:
        self.start_at = start_at
        self.end_at = end_at
        self.path = path
        self._root = os.getpid()
        self._count = multiprocessing.Value("q", 0)
        self._start = multiprocessing.Array("d", 2, lock=False)

    def record(self) -> None:
        """Count one finished run; stamp the window when it is one of its two edges."""
        with self._count.get_lock():
            index = self._count.value
            self._count.value = index + 1
        if index == self.start_at:
            self._start[0] = time.perf_counter()
            self._start[1] = tree_cpu_seconds(self._root)
        elif index == self.end_at:
            wall, cpu = time.perf_counter(), tree_cpu_seconds(self._root)
            window = {
                "wall": wall - self._start[0],
                "cpu": cpu - self._start[1],
                "rss_mib": tree_rss_mib(self._root),
            }
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(window))
            partial.replace(self.path)
