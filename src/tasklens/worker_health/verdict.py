"""A worker process's liveness verdict, shared by the Dramatiq and Celery probes.

Each library's probe reads its own process's state (threads or pool processes alive, the
consumer's connection, what each worker slot is busy with and since when) into a
``WorkerVerdict``. A worker is *hung* when every slot that could take a message has been busy with
the same one for longer than ``max_busy``: it will make no progress however much work waits. A
busy worker, whose slots finish messages and take new ones, passes.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Busy", "WorkerProbe", "WorkerVerdict", "hung_reason"]


@dataclass(frozen=True)
class WorkerVerdict:
    """Whether the worker process is alive, and why not.

    Parameters:
      healthy(bool): The verdict.
      library(str): dramatiq or celery.
      reasons(list[str]): Why it is not healthy (empty when it is).
      checks(dict): What the verdict is based on (threads, busy slots, last message...).
    """

    healthy: bool
    library: str
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "healthy" if self.healthy else "unhealthy"

    def to_json(self) -> dict[str, Any]:
        """The body of ``GET /healthz``."""
        return {
            "status": self.status,
            "library": self.library,
            "reasons": self.reasons,
            "checks": self.checks,
        }

    @classmethod
    def of(cls, library: str, reasons: list[str], checks: dict[str, Any]) -> WorkerVerdict:
        return cls(not reasons, library, reasons, checks)


@dataclass(frozen=True)
class Busy:
    """A worker slot (thread or pool process) processing one message.

    Parameters:
      name(str): The actor or task name.
      since(float): When it started, Unix seconds.
    """

    name: str
    since: float


def hung_reason(busy: list[Busy], slots: int, max_busy: float, now: float) -> str | None:
    """Why the worker is hung, or ``None``: every one of its ``slots`` busy longer than
    ``max_busy`` seconds.

    Parameters:
      busy(list[Busy]): What each busy slot processes.
      slots(int): How many messages the worker can process at once.
      max_busy(float): Longest one message may take, in seconds.
      now(float): Unix seconds.
    """
    stuck = [b for b in busy if now - b.since > max_busy]
    if slots <= 0 or len(stuck) < slots:
        return None
    longest = max(stuck, key=lambda b: now - b.since)
    return (
        f"all {slots} worker slots busy for more than {max_busy:g} s"
        f" (longest: {longest.name}, {now - longest.since:.0f} s)"
    )


class WorkerProbe(abc.ABC):
    """Reads one process's worker state into a verdict; called from the health server's thread."""

    @property
    @abc.abstractmethod
    def started(self) -> bool:
        """Whether its library's worker has started in this process (so the probe has a say)."""

    @abc.abstractmethod
    def verdict(self) -> WorkerVerdict:
        """The verdict now; never raises."""

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """In a forked child process: drop what belonged to the parent (locks, threads)."""
