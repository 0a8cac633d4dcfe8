"""Real processes for the monitor tests: ``tasklens monitor`` and Prometheus, on free ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

#: How long a process may take to start answering, in seconds.
START_DEADLINE = 30.0
#: Longest a CLI subprocess may run in a test, in seconds.
SUBPROCESS_TIMEOUT = 60


def run_tasklens(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``tasklens ARGS`` as a user would: a new process, its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "tasklens", *args],
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def require_program(name: str) -> str:
    """The path of program ``name``; the test is skipped when it is absent, or fails under
    ``CI=true`` (``make system-deps`` installs Prometheus and promtool)."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (make system-deps installs it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true: a missing program is a failure", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A local TCP port that was free a moment ago (and so, until reused, a closed one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes], *, timeout: float = START_DEADLINE) -> None:
    """Poll ``url`` until it answers (any status); fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            _, stderr = process.communicate(timeout=5)
            raise AssertionError(f"the process exited with {process.returncode}: {stderr.decode()[-2000:]}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer within {timeout} s")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], *, timeout: float = 15.0) -> None:
    """Interrupt the process, then kill it if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@contextmanager
def running_monitor(*args: str, env: dict[str, str] | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """``tasklens monitor ARGS --port <free>`` in a subprocess; yields its base URL. It keeps no
    telemetry store, so that monitors started at once do not share the default one."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasklens",
            "monitor",
            *args,
            "--no-store",
            "--host",
            host,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/healthz", process)
        yield base_url
    finally:
        stop(process)
        if process.stderr is not None:
            process.stderr.close()
