"""Worker processes started together share one endpoint: ``dramatiq --processes N``.

Only one process can listen on the health port. Every worker process started by the same parent
(the ``dramatiq`` command) therefore publishes its own verdict, once per ``PUBLISH_INTERVAL``, as a
small JSON file in a directory named after the parent's pid and the port; the process that holds
the port answers for all of them: its siblings (started by the same parent) and its children (when
it is that parent, as under ``opentelemetry-instrument``, where the ``dramatiq`` command's own
process instruments itself before it forks the workers). A sibling that stopped publishing for
``STALE_AFTER`` seconds (its process is stuck as a whole) fails the verdict; the file of a process
that has exited is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tasklens.worker_health.verdict import WorkerVerdict

__all__ = ["PUBLISH_INTERVAL", "STALE_AFTER", "Sibling", "SiblingBoard"]

#: How often each process publishes its verdict, in seconds.
PUBLISH_INTERVAL = 1.0
#: A sibling whose verdict is older than this is stuck, in seconds.
STALE_AFTER = 10.0


@dataclass(frozen=True)
class Sibling:
    """Another worker process's last published verdict.

    Parameters:
      pid(int): Its process id.
      age(float): Seconds since it published.
      verdict(WorkerVerdict): What it said.
    """

    pid: int
    age: float
    verdict: WorkerVerdict


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SiblingBoard:
    """The directory where sibling worker processes publish their verdicts.

    Parameters:
      directory(Path): Shared by the processes of one parent and one port.
      clock(Callable[[], float]): Wall clock, Unix seconds.
    """

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self._clock = clock
        self._stop = threading.Event()

    @classmethod
    def for_port(cls, port: int, *, parent: int | None = None) -> SiblingBoard:
        """The board of the processes started by ``parent`` (by default this process's parent:
        its siblings' board) that share ``port``."""
        name = f"tasklens-worker-health-{os.getuid()}-{os.getppid() if parent is None else parent}-{port}"
        return cls(Path(tempfile.gettempdir()) / name)

    def publish(self, verdict: WorkerVerdict) -> None:
        """Replace this process's entry atomically."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        entry = {"pid": os.getpid(), "at": self._clock(), "verdict": verdict.to_json()}
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        with os.fdopen(descriptor, "w") as file:
            json.dump(entry, file)
        os.replace(temporary, self.directory / f"{os.getpid()}.json")

    def withdraw(self) -> None:
        """Remove this process's entry (at exit)."""
        with contextlib.suppress(OSError):
            (self.directory / f"{os.getpid()}.json").unlink()

    def siblings(self) -> list[Sibling]:
        """Every other live process's last verdict; entries of exited processes are removed."""
        found: list[Sibling] = []
        now = self._clock()
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.json")):
            try:
                pid = int(path.stem)
            except ValueError:
                continue
            if pid == os.getpid():
                continue
            if not _alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            try:
                entry = json.loads(path.read_text())
                body = entry["verdict"]
                verdict = WorkerVerdict(
                    body["status"] == "healthy", body["library"], list(body["reasons"]), dict(body["checks"])
                )
                found.append(Sibling(pid, now - float(entry["at"]), verdict))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being replaced right now, or not ours: the next read sees it
        return found

    def start_publishing(self, verdict: Callable[[], WorkerVerdict | None]) -> None:
        """Publish ``verdict()`` every ``PUBLISH_INTERVAL`` seconds on a daemon thread (nothing
        while it returns ``None``: no worker has started in this process)."""

        def run() -> None:
            while not self._stop.wait(PUBLISH_INTERVAL):
                current = verdict()
                if current is not None:
                    with contextlib.suppress(OSError):
                        self.publish(current)

        threading.Thread(target=run, name="tasklens-worker-health-publish", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.withdraw()
