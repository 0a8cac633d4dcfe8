"""How much memory a process holds, from /proc: what the memory bounds of the tests read."""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(f"{field} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    """The process's resident memory now, in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """The most resident memory the process ever had (its high-water mark), in MiB."""
    return _status_kib(pid, "VmHWM") / 1024
