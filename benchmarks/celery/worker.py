"""The benchmark's ``celery worker``: what a trial tells it to run, and the command that starts it."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass

__all__ = ["CONCURRENCY", "WorkerSettings", "worker_command"]

#: Worker processes (prefork) or threads (threads) per pool, sized for a 2-core machine.
CONCURRENCY = {"prefork": 2, "threads": 8}

#: The prefix of every variable the trial passes its worker.
PREFIX = "TLBENCH_CELERY_"


@dataclass
class WorkerSettings:
    """What one benchmark worker runs.

    Parameters:
      broker(str): ``redis`` or ``rabbitmq``.
      queue(str): The trial's queue.
      variant(str): A name from :data:`benchmarks.celery.variants.VARIANTS`.
      pool(str): The pool given to ``celery worker -P``.
      sink(str): The OTLP sink's base URL.
      unreachable(str): A base URL that refuses connections.
      start_at(int): Run index that opens the timed window.
      end_at(int): Run index that closes it.
      marks(str): Path of the file the window is written to.
    """

    broker: str
    queue: str
    variant: str
    pool: str
    sink: str
    unreachable: str
    start_at: int
    end_at: int
    marks: str

    def environment(self) -> dict[str, str]:
        """These settings as ``TLBENCH_CELERY_*`` variables."""
        return {PREFIX + key.upper(): str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_environment(cls) -> WorkerSettings:
        values = {name: os.environ[PREFIX + name.upper()] for name in cls.__dataclass_fields__}
        return cls(**{**values, "start_at": int(values["start_at"]), "end_at": int(values["end_at"])})


def worker_command(settings: WorkerSettings) -> list[str]:
    """``celery worker`` on the benchmark's app (:mod:`benchmarks.celery.worker_app`) as set."""
    return [
        sys.executable, "-m", "celery", "-A", "benchmarks.celery.worker_app", "worker",
        "-P", settings.pool, "-c", str(CONCURRENCY[settings.pool]), "-Q", settings.queue,
        "-n", f"{settings.queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "--loglevel", "WARNING",
    ]  # fmt: skip
