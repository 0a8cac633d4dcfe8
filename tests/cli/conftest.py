from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from tasklens.cli import main
from tests.monitor.ground_truth import PopulatedQueue, populated_queue

#: Longest a CLI subprocess may run in a test, in seconds.
SUBPROCESS_TIMEOUT = 60


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_tasklens(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``tasklens ARGS`` as a user would: a new process, its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "tasklens", *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


Invoke = Callable[..., Result]


@pytest.fixture
def invoke() -> Invoke:
    """``invoke(*args, input=None)``: run a tasklens command in this process."""
    runner = CliRunner(env={"COLUMNS": "200"})

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def queue(redis_url: str, unique_name: str) -> Iterator[PopulatedQueue]:
    """A queue with 3 ready, 2 delayed and 5 dead messages."""
    with populated_queue(redis_url, unique_name, ready=3, delayed=2, dead=5) as populated:
        yield populated
