"""The real Redis and RabbitMQ servers the tests talk to.

When a server does not answer, it is started if its binary is installed. When it still does not
answer, tests that need it are skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
RABBITMQ_MANAGEMENT_PORT = 15672
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
RABBITMQ_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/%2F"

#: How long a server that we started may take to accept connections, in seconds.
START_TIMEOUT = 60.0


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_for(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answers(host, port):
            return True
        time.sleep(0.25)
    return False


def _start_redis() -> None:
    if shutil.which("redis-server") is None:
        return
    os.makedirs("/tmp/tasklens-redis", exist_ok=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(REDIS_PORT),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/tmp/tasklens-redis",
        ],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _start_rabbitmq() -> None:
    if shutil.which("rabbitmq-server") is None:
        return
    subprocess.run(
        ["rabbitmq-server", "-detached"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _require(name: str, host: str, port: int, start) -> None:
    if answers(host, port):
        return
    start()
    if _wait_for(host, port, START_TIMEOUT):
        return
    message = f"{name} does not answer on {host}:{port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def require_redis() -> str:
    _require("Redis", REDIS_HOST, REDIS_PORT, _start_redis)
    return REDIS_URL


def require_rabbitmq() -> str:
    _require("RabbitMQ", RABBITMQ_HOST, RABBITMQ_PORT, _start_rabbitmq)
    return RABBITMQ_URL


def _enable_rabbitmq_management() -> None:
    if shutil.which("rabbitmq-plugins") is None:
        return
    subprocess.run(
        ["rabbitmq-plugins", "enable", "rabbitmq_management"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=START_TIMEOUT,
    )


def require_rabbitmq_management() -> str:
    """The RabbitMQ management API's base URL (credentials from the AMQP URL); the plugin is
    enabled when it does not answer (``scripts/system-deps`` enables it too)."""
    require_rabbitmq()
    _require("RabbitMQ management API", RABBITMQ_HOST, RABBITMQ_MANAGEMENT_PORT, _enable_rabbitmq_management)
    return f"http://{RABBITMQ_HOST}:{RABBITMQ_MANAGEMENT_PORT}"
