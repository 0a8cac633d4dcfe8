"""Real worker processes with the health endpoint on, and polling it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.monitor.processes import free_port

#: How long a worker may take to start answering, and a verdict to change, in seconds.
DEADLINE = 60.0
#: The max busy time the tests configure, in seconds.
MAX_BUSY = 2.0
#: The repository root, so that the workers import ``tests.worker_health.apps``.
ROOT = Path(__file__).resolve().parents[2]


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def health(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(self.url, timeout=5.0)
        return response.status_code, response.json()

    def wait_for(self, condition: Callable[[int, dict[str, Any]], bool], what: str) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE
        last: Any = None
        while True:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the worker exited with {self.process.returncode}: {self.log.read_text()[-3000:]}"
                )
            try:
                status, body = self.health()
                last = (status, body)
                if condition(status, body):
                    return body
            except httpx.TransportError as exc:
                last = exc
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; last answer {last}; log: {self.log.read_text()[-3000:]}"
                )
            time.sleep(0.2)


@contextmanager
def running_worker(command: list[str], env: dict[str, str], log: Path) -> Iterator[Worker]:
    """``command`` with the health endpoint on a free port; killed (its whole group) at the end."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OTEL_SDK_DISABLED": "true",
        "TASKLENS_WORKER_HEALTH": "1",
        "TASKLENS_WORKER_HEALTH_PORT": str(port),
        "TASKLENS_WORKER_HEALTH_MAX_BUSY": str(MAX_BUSY),
        **env,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Worker(process, f"http://127.0.0.1:{port}/healthz", log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                # A worker thread blocked for good never lets a graceful shutdown finish.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def tasklens_health(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tasklens", "health", "--worker", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
